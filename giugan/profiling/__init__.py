"""Parameter and MAC counting under the 2020 thop rules, and ``giugan profile`` (no Lightning)."""
