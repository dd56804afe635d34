"""``python -m giugan`` = the ``giugan`` console script."""

from giugan.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
