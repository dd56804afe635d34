"""The FID and IS the papers print per table row, keyed by the row config's ``__run_name__``.

GIU-GANs (Tian et al.) Tables 1, 3-8 and the iGAN report's Table 2 (its minimum FID; no IS). The
GIU-GANs IS column is not on the standard TF-Inception scale (README, metric protocol): it is shown
for reference only. A row shared by several tables (``cifar10_giu_gan``: Table 1 "Deep D and
Shallow G", Table 3 "GIU-GANs-V3", Table 4 "K 3, Group_Channels 16", Tables 5, 7, 8 "GIU-GANs")
prints the same numbers in each; it is listed once, under Table 5.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperScore:
    """One printed row: where it is printed, its name there, FID and IS (None where not printed)."""

    table: str
    row: str
    fid: float | None
    inception_score: float | None


def _giu(table: str, row: str, inception_score: float, fid: float) -> PaperScore:
    return PaperScore(f"GIU-GANs Table {table}", row, fid, inception_score)


def _igan(case: str, fid: float) -> PaperScore:
    return PaperScore("iGAN report Table 2", case, fid, None)


PAPER_SCORES: dict[str, PaperScore] = {
    "ablation_table1_middle": _giu("1", "Middle D and G", 4.36, 26.72),
    "ablation_table1_shallow_d_deep_g": _giu("1", "Shallow D and Deep G", 3.96, 39.53),
    "ablation_table1_all": _giu("1", "All the D and G", 4.21, 35.36),
    "ablation_table1_only_g": _giu("1", "Only G", 4.52, 26.24),
    "ablation_table1_only_d": _giu("1", "Only D", 4.44, 29.84),
    "ablation_table2_v1": _giu("3", "GIU-GANs-V1", 4.39, 34.80),
    "ablation_table2_v2": _giu("3", "GIU-GANs-V2", 4.78, 23.18),
    "ablation_table2_v3": _giu("3", "GIU-GANs-V3", 4.72, 22.66),
    "ablation_table2_v4": _giu("3", "GIU-GANs-V4", 3.25, 61.28),
    "ablation_table2_v5": _giu("3", "GIU-GANs-V5", 4.47, 28.93),
    "ablation_table4_k5": _giu("4", "K 5, Group_Channels 16", 4.64, 24.71),
    "ablation_table4_k7": _giu("4", "K 7, Group_Channels 16", 4.73, 22.97),
    "ablation_table4_gc8": _giu("4", "K 3, Group_Channels 8", 4.58, 24.50),
    "ablation_table4_gc32": _giu("4", "K 3, Group_Channels 32", 4.65, 24.89),
    "cifar10_dcgan": _giu("5", "DCGANs", 4.34, 26.22),
    "cifar10_lsgan": _giu("5", "LSGANs", 3.24, 66.51),
    "cifar10_wgan_gp": _giu("5", "WGAN-GP", 4.51, 22.95),
    "cifar10_sngan": _giu("5", "SNGANs", 4.40, 24.60),
    "cifar10_sagan": _giu("5", "SAGANs", 3.52, 67.31),
    "cifar10_giu_gan": _giu("5", "GIU-GANs", 4.72, 22.66),
    "celeba_lsgan": _giu("6", "LSGANs", 2.40, 15.48),
    "celeba_wgan_gp": _giu("6", "WGAN-GP", 2.48, 11.07),
    "celeba_wgan_gp_plus2": _giu("6", "WGAN-GP(+2)", 2.50, 12.39),
    "celeba_wgan_gp_plus3": _giu("6", "WGAN-GP(+3)", 2.57, 8.98),
    "celeba_sngan": _giu("6", "SNGANs", 2.54, 7.09),
    "celeba_sagan": _giu("6", "SAGANs", 2.11, 19.10),
    "celeba_giu_gan": _giu("6", "GIU-GANs", 2.61, 6.34),
    "ablation_table7_baseline": _giu("7", "baseline", 3.83, 37.54),
    "ablation_table7_no_giu": _giu("7", "GIU-GANs without GIU module", 3.99, 39.97),
    "cifar10_giu_gan_no_rbn": _giu("8", "GIU-GANs without RBN (CIFAR-10)", 4.79, 22.12),
    "celeba_giu_gan_no_rbn": _giu("8", "GIU-GANs without RBN (CelebA)", 2.50, 6.53),
    "igan_igan": _igan("case 1: K 3, G 4, R 2", 61.51),
    "igan_case2": _igan("case 2: K 7, G 4, R 8", 76.00),
    "igan_case3": _igan("case 3: K 7, G 4, R 2", 112.85),
    "igan_case4": _igan("case 4: K 3, G 4, R 8", 76.01),
    "igan_case5": _igan("case 5: K 3, G 1, R 2", 62.34),
    "igan_case6": _igan("case 6: K 1, G 4, R 2", 68.73),
    "igan_case7": _igan("case 7: K 5, G 4, R 2", 63.37),
}
