"""MicroPython on the board: the `embbert` user C module per artifact
(module.py), MicroPython's core from its pinned sdist (source.py), and our
Cortex-M port built with that module (firmware.py)."""
