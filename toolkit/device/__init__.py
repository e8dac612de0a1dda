"""Host side of the device work: board descriptions, tokenizer tables, the
framed serial protocol, the QEMU emulator and `embbert build`.

Each module is imported only when used (pyserial, subprocesses, compilers).
"""
