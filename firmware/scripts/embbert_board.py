# PlatformIO pre-script shared by every environment: reads the board's
# description (../boards/<board>/board.toml, named by custom_embbert_board)
# and the build's generated folder ($EMBBERT_GEN_DIR, written by
# `embbert build`), then adds the port, the backend, the generated sources,
# the defines and, for bare-metal boards, the CPU and linker flags.
import json
import os
import tomllib
from pathlib import Path

Import("env")  # noqa: F821 (SCons)

project = Path(env.subst("$PROJECT_DIR"))
board_name = env.GetProjectOption("custom_embbert_board")
board_dir = project.parent / "boards" / board_name
board = tomllib.loads((board_dir / "board.toml").read_text())
build = board["build"]

gen_dir = os.environ.get("EMBBERT_GEN_DIR")
if not gen_dir or not (Path(gen_dir) / "build.json").is_file():
    raise SystemExit("error: EMBBERT_GEN_DIR must name a folder with build.json and the generated sources; "
                     f"build with `embbert build ART_DIR --board {board_name}`, which writes it")
gen = Path(gen_dir).resolve()
config = json.loads((gen / "build.json").read_text())
backend = config["backend"]

counter = board["counter"]
env.Append(
    CPPPATH=[str(project / "src"), str(gen), str(project / "src" / "backends" / backend)],
    CPPDEFINES=[
        ("EMBBERT_BOARD", env.StringifyMacro(board_name)),
        ("EMBBERT_COUNTER_UNIT", env.StringifyMacro(counter["unit"])),
        ("EMBBERT_COUNTER_NUM", counter.get("num", 1)),
        ("EMBBERT_COUNTER_DEN", counter.get("den", 1)),
        ("EMBBERT_BAUDRATE", board["serial"]["baudrate"]),
        *[(k, v) for k, v in sorted(config.get("defines", {}).items())],
    ],
    # include trees the backend names (aot: TFLite-Micro's reference kernels and
    # gemmlowp from the pinned wheels, in the user cache), as system headers: their
    # unused-parameter warnings are upstream's, not ours
    CCFLAGS=["-ffunction-sections", "-fdata-sections", *["-isystem" + d for d in config.get("include_dirs", [])]],
    CXXFLAGS=["-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"],
    LINKFLAGS=["-Wl,--gc-sections", "-Wl,-Map=" + str(Path(env.subst("$BUILD_DIR")) / "firmware.map")],
)

if build.get("linker_script"):  # bare metal: our start-up, our memory map
    cpu = ["-mcpu=" + build["cpu"], "-mthumb"]
    if build.get("fpu"):
        cpu += ["-mfpu=" + build["fpu"], "-mfloat-abi=" + build.get("float_abi", "hard")]
    env.Append(
        ASFLAGS=cpu,
        CCFLAGS=cpu,
        # the port folders on the search path: a board's script INCLUDEs their sections.ld
        LINKFLAGS=cpu + ["--specs=nano.specs", "-nostartfiles",
                         *["-L" + str((board_dir / src).resolve()) for src in build.get("sources", [])],
                         "-T", str((board_dir / build["linker_script"]).resolve()),
                         "-Wl,--defsym=__stack_size__=%d" % build["stack_bytes"]],
    )

for i, src in enumerate(build.get("sources", [])):
    env.BuildSources("$BUILD_DIR/port%d" % i, str((board_dir / src).resolve()))
if backend == "tflm":
    # TFLite-Micro's headers come from a lib_deps library, whose include path
    # PlatformIO gives only to the project's own sources (built after this
    # script, with the library's environment): the backend joins them through
    # the source filter instead of being built here.
    src_filter = env.get("SRC_FILTER") or ["+<*>"]
    env.Replace(SRC_FILTER=([src_filter] if isinstance(src_filter, str) else list(src_filter)) + ["+<backends/tflm/>"])
    # library sources that cannot build for this board (platformio.ini says which)
    skip = [p.strip() for p in env.GetProjectOption("custom_embbert_skip_lib_sources", "").replace("\n", ",").split(",")
            if p.strip()]
    for pattern in skip:
        env.AddBuildMiddleware(lambda node: None, pattern)
else:
    # kernels/ holds headers (the generated code includes them) and their bare-metal tests
    env.BuildSources("$BUILD_DIR/backend", str(project / "src" / "backends" / backend), src_filter="+<*> -<kernels/>")
env.BuildSources("$BUILD_DIR/generated", str(gen))
