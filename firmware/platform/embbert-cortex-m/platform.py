from platformio.public import PlatformBase


class EmbbertcortexmPlatform(PlatformBase):
    """(PlatformIO derives this class name from "embbert-cortex-m".) No packages to fetch: the toolchain is the one on PATH."""
