# SCons builder of the local bare-metal platform. The board flags (CPU, FPU,
# linker script, port sources) were added by scripts/embbert_board.py, which
# runs first (extra_scripts = pre:...).
import shutil

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
if shutil.which("arm-none-eabi-gcc") is None:
    raise SystemExit("error: arm-none-eabi-gcc not found on PATH; install gcc-arm-none-eabi "
                     "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib (./setup.sh does)")
env.Replace(
    AR="arm-none-eabi-gcc-ar", AS="arm-none-eabi-gcc", CC="arm-none-eabi-gcc", CXX="arm-none-eabi-g++",
    LINK="arm-none-eabi-g++", OBJCOPY="arm-none-eabi-objcopy", RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size", PROGNAME="firmware", PROGSUFFIX=".elf",
)
elf = env.BuildProgram()
binary = env.Command("$BUILD_DIR/firmware.bin", elf, "$OBJCOPY -O binary $SOURCE $TARGET")
AlwaysBuild(env.Alias("size", elf, "$SIZETOOL $SOURCE"))
Default([elf, binary])
