"""Command-line entry points: `zun-controller` (composition root) and `zunctl`."""
