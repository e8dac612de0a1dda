"""The aot backend's generated C++ (convert/aot), built for the host with the
firmware's flags, against the host TFLite-Micro interpreter: int8 logits bit
for bit on real sentences, at full length and on the real length only."""

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli
from test_convert import _make_run

from embbert.config import ModelConfig
from embbert.convert.aot import attention, quant, rhs_transpose
from embbert.convert.aot.artifact import generate_sources
from embbert.convert.aot.codegen import Emitter, fuse, macs, plan_arena
from embbert.convert.aot.graph import Graph, Op, Tensor, read_graph
from embbert.convert.aot.host import HostModel, build_host
from embbert.convert.parity import artifact_micro_logits, padded
from embbert.data import load_task
from embbert.tokenizer import encode

# Smaller than the real presets (fast conversions), with the ops of each family:
# EmbBERT (conv branch, RMSNorm's RSQRT, efficient attention), BERT (LayerNorm's
# SUB, TANH pooler, BATCH_MATMUL without adj_y), Embedder + conv (SUM pooling).
SMOKE = ModelConfig(name="embbert-aot-smoke", family="embbert", vocab_size=512, max_len=64, d_model=32,
                    embed_rank=8, n_layers=2, conv_kernel=8)
FAMILIES = {
    "embbert": SMOKE,
    "bert": ModelConfig(name="bert-aot-smoke", family="bert", vocab_size=512, max_len=64, d_model=32, n_layers=1,
                        n_heads=2, attention="standard", ff_dim=64),
    "embedder-conv": ModelConfig(name="embedder-conv-aot-smoke", family="embedder", vocab_size=512, max_len=64,
                                 d_model=48, embed_rank=8, n_layers=0, n_heads=0, attention="none", conv_kernel=8,
                                 pooling="rms"),
}


_CONVERTED = {}  # one conversion per config per session, shared by the fixtures


def _convert(tmp_path_factory, cfg):
    if cfg.name in _CONVERTED:
        return _CONVERTED[cfg.name]
    root = tmp_path_factory.mktemp("aot")
    run = _make_run(root / "run", cfg, seed=3)
    out = root / "art"
    run_cli("convert", run, "--out", out, "--calibration", "20", "--test-limit", "20", "--json", check=True)
    _CONVERTED[cfg.name] = out
    return out


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_art(request, tmp_path_factory):
    return _convert(tmp_path_factory, FAMILIES[request.param])


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return _convert(tmp_path_factory, SMOKE)


def _host(art, tmp_path_factory):
    return HostModel(build_host(art, tmp_path_factory.mktemp("aot-build")))


@pytest.fixture(scope="module")
def host(art, tmp_path_factory):
    with _host(art, tmp_path_factory) as hm:
        yield hm


def _sentences(art, k):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(art / "tokenizer.json"))
    L = json.loads((art / "manifest.json").read_text())["sequence_length"]
    texts = [e.text for e in load_task("sms_spam", seed=0).test]
    seqs = encode(tok, texts[:k], L)
    seqs[-1] = seqs[-1] + [4] * (L - len(seqs[-1]))  # one sentence at the full length L
    return seqs, L


def test_full_length_logits_are_bit_identical_to_tflite_micro(family_art, tmp_path_factory):
    seqs, L = _sentences(family_art, 60)
    ref = artifact_micro_logits(family_art, seqs)
    with _host(family_art, tmp_path_factory) as hm:
        got = [hm.infer(list(padded(s, L)[0])) for s in seqs]
    assert len({tuple(r) for r in ref}) > 5  # the inputs really differ
    assert got == ref


def test_optimized_kernels_plain_c_path_is_bit_identical_on_the_host(family_art, tmp_path_factory):
    """kernels/optimized without the DSP extension (the host's g++): its plain-C loops."""
    seqs, L = _sentences(family_art, 30)
    ref = artifact_micro_logits(family_art, seqs)
    exe = build_host(family_art, tmp_path_factory.mktemp("aot-optimized"), kernels="optimized")
    with HostModel(exe) as hm:
        assert [hm.infer(list(padded(s, L)[0])) for s in seqs] == ref


def test_length_aware_mode_is_bit_identical_on_real_sentences(family_art, tmp_path_factory):
    """Only the n real tokens are computed. Padded keys are at the int8 minimum
    before each softmax (their share of its sum added in closed form) and at
    probability 0 after it (convert/exact_mask.py): every logit equals full-length
    TFLite-Micro's, with both kernel folders."""
    seqs, L = _sentences(family_art, 60)
    seqs += [seqs[0][:1], seqs[0][:2]]  # 1 and 2 real tokens: L - 1 and L - 2 padded keys
    ref = artifact_micro_logits(family_art, seqs)
    for kernels in ("reference", "optimized"):
        exe = build_host(family_art, tmp_path_factory.mktemp("aot-" + kernels), kernels=kernels)
        with HostModel(exe) as hm:
            got = [hm.infer(s) for s in seqs]
        diff = [i for i, (g, r) in enumerate(zip(got, ref)) if g != r]
        assert not diff, f"{kernels}: {len(diff)} of {len(seqs)} differ, first {diff[0]}: {got[diff[0]]} {ref[diff[0]]}"


@pytest.mark.parametrize("kernels", ["reference", "optimized"])
def test_arena_plan_never_overlaps_live_tensors(art, kernels):
    g = read_graph((art / "model.tflite").read_bytes())
    fuse(g, kernels)  # as the code generator plans it: the attention tiles are an op's scratch
    bufs, scratch, total = plan_arena(g, kernels)
    items = {id(b): b for b in list(bufs.values()) + list(scratch.values())}.values()
    for a in items:
        assert a.offset % 16 == 0 and a.offset + a.size <= total
        for b in items:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    assert macs(g, 16) < macs(g, 64)  # work follows the sentence length


def test_attention_is_planned_without_an_L_by_L_buffer(family_art):
    """Each attention chain (BATCH_MATMUL -> row-wise ops -> SOFTMAX -> BATCH_MATMUL) runs in
    tiles of query rows: no buffer of the plan holds a whole L x L score map."""
    g = read_graph((family_art / "model.tflite").read_bytes())
    unfused = plan_arena(g, "optimized")[2]
    chains = attention.find_chains(g)
    if any(op.kind == "SOFTMAX" and g.tensors[op.outputs[0]].static_shape[-2:] == [g.L, g.L] for op in g.ops):
        assert chains  # the families with attention
    em = Emitter(g, "optimized")
    assert sum(op.kind == attention.KIND for op in g.ops) == len(chains)
    assert all(g.tensors[b.root].shape[-2:] != [(1, 0), (1, 0)] for b in em.bufs.values())  # no [.., n, n] map
    assert all(b.size < g.L * g.L for b in em.scratch.values())
    assert em.arena_bytes <= unfused


def test_causal_pad_is_read_by_its_conv_not_copied(family_art):
    """causal_conv.py: a PAD before a one-axis DEPTHWISE_CONV_2D becomes the conv's pad_before
    (the logits stay bit-exact: the tests above; the kernels: tests/test_aot_kernels.py)."""
    g = read_graph((family_art / "model.tflite").read_bytes())
    convs = [op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D"]
    padded = [op for op in convs if any(p.kind == "PAD" and p.outputs[0] == op.inputs[0] for p in g.ops)]
    Emitter(g, "optimized")
    assert not any(p.kind == "PAD" and p.outputs[0] == op.inputs[0] for p in g.ops for op in convs)
    assert [op.options.get("pad_before", 0) for op in padded] == [g.tensors[op.inputs[1]].static_shape[2] - 1
                                                                   for op in padded]  # causal: taps - 1


def _transposed_rhs(g: Graph) -> list:
    """The TRANSPOSEs of the last two axes whose output a BATCH_MATMUL reads as its right-hand side."""
    return [t for t in g.ops if t.kind == "TRANSPOSE" and rhs_transpose._swaps_last_two(g, t) and any(
        t.outputs[0] == mm.inputs[1] for op in g.ops for mm in [op, *op.options.get("chain", ())]
        if mm.kind == "BATCH_MATMUL")]


def test_optimized_matmuls_read_their_rhs_untransposed(family_art):
    """rhs_transpose.py: for the optimized kernels no transposed copy of a BATCH_MATMUL's
    right-hand side (EmbBERT's x^T, BERT's K^T) is in the plan; the matmul reads it as
    [depth, units] (adj_y off), and x^T's other readers (x^T transposed back, a one-column
    slice) read x. The reference kernels keep the TRANSPOSE. Logits: the tests above."""
    g = read_graph((family_art / "model.tflite").read_bytes())
    if not _transposed_rhs(g):
        pytest.skip("no BATCH_MATMUL with a computed right-hand side")
    ref = read_graph((family_art / "model.tflite").read_bytes())
    Emitter(ref, "reference")
    assert _transposed_rhs(ref)
    xt = {t.outputs[0]: t.inputs[0] for t in _transposed_rhs(ref)}
    slices = {op.index: xt[op.inputs[0]] for op in ref.ops if op.kind == "STRIDED_SLICE" and op.inputs[0] in xt}
    em = Emitter(g, "optimized")
    assert not _transposed_rhs(g)
    assert {op.index: op.inputs[0] for op in g.ops if op.index in slices and op.options.get("size")} == slices
    assert not any(op.kind == "TRANSPOSE" and rhs_transpose._swaps_last_two(g, op) and any(
        t.kind == "TRANSPOSE" and t.outputs[0] == op.inputs[0] for t in g.ops) for op in g.ops)  # nor x^T back
    assert any(not mm.options["adjY"] for op in g.ops for mm in [op, *op.options.get("chain", ())]
               if mm.kind == "BATCH_MATMUL")
    assert not any(g.tensors[t].name.endswith("/transposed") for t in em.bufs)


def test_sources_of_the_generator_before_rhs_transpose_still_build_and_the_profile_refuses_them(art, tmp_path,
                                                                                                monkeypatch):
    """An artifact converted before rhs_transpose.py (its optimized sources keep x^T) builds over
    today's kernels and stays bit-exact: `embbert build` only compiles what the manifest names.
    The per-op profile, which names ops by today's generator, refuses it in one line."""
    from embbert.convert.aot.profile import profile
    from embbert.errors import UserError

    monkeypatch.setattr(rhs_transpose, "fuse", lambda g: None)
    old = _regenerated(art, tmp_path / "old")
    monkeypatch.undo()
    assert "BatchMatMulRhsDepthUnits" not in (old / "aot" / "optimized" / "model_aot.cc").read_text()
    seqs, _ = _sentences(art, 10)
    with HostModel(build_host(old, tmp_path / "build", "optimized")) as hm:
        assert [hm.infer(s) for s in seqs] == artifact_micro_logits(art, seqs)
    with pytest.raises(UserError, match=r"which this generator does not emit; run `embbert convert` again"):
        profile(old, "qemu-m4", [8], seqs[0], tmp_path / "profile", "optimized")
    assert not (tmp_path / "profile").exists()


@pytest.mark.parametrize("kernels", ["reference", "optimized"])
def test_attention_tiles_are_bit_identical_to_the_unfused_chain(art, kernels, tmp_path, monkeypatch):
    """Length-aware (n real tokens) and full length: the tiled attention gives the logits
    of the same kernels run on the whole L x L score maps, on every sentence."""
    seqs, L = _sentences(art, 40)
    inputs = seqs + [list(padded(s, L)[0]) for s in seqs[:10]]
    with HostModel(build_host(art, tmp_path / "tiled", kernels)) as hm:
        tiled = [hm.infer(s) for s in inputs]
    assert "ATTENTION" in (art / "aot" / kernels / "model_aot.cc").read_text()
    monkeypatch.setattr(attention, "find_chains", lambda g, tile_rows: [])
    whole_art = _regenerated(art, tmp_path / "whole-art")
    with HostModel(build_host(whole_art, tmp_path / "whole", kernels)) as hm:
        whole = [hm.infer(s) for s in inputs]
    assert "ATTENTION" not in (whole_art / "aot" / kernels / "model_aot.cc").read_text()
    assert len({tuple(x) for x in whole}) > 5 and tiled == whole


def _regenerated(art, dest):
    """A copy of the artifact with its aot sources generated again (by the code as patched now),
    and the manifest naming them."""
    shutil.copytree(art, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    files, entries = generate_sources((dest / "model.tflite").read_bytes(), manifest["labels"])
    for path, data in files.items():
        (dest / path).write_bytes(data)
    manifest["aot"] = {k: e.model_dump() for k, e in entries.items()}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dest


def _tensor(g: Graph, shape, dtype="int8", data=None) -> int:
    g.tensors.append(Tensor(len(g.tensors), f"t{len(g.tensors)}", dtype, [1 if d == (0, 1) else 8 for d in shape],
                            [0.1], 0, data, shape))
    return len(g.tensors) - 1


def test_attention_chain_is_matched_by_what_its_ops_do_to_rows():
    """A masked chain of another form (SELECT_V2 on a key mask around the SOFTMAX) fuses;
    an operand that differs per row, or a score map read elsewhere, keeps the chain whole."""
    n, one = (1, 0), (0, 1)

    def chain(mask_shape, extra_reader=False):
        g = Graph([], [], [], [], L=8)
        q, k, v = (_tensor(g, [one, n, (0, 4)]) for _ in range(3))
        g.inputs = [q]
        pad = _tensor(g, mask_shape, "bool")
        low, zero = (_tensor(g, [], data=np.array(x, np.int8)) for x in (-128, 0))
        s, m, p, p2, o = (_tensor(g, [one, n, n]) for _ in range(5))
        out = _tensor(g, [one, n, (0, 4)])
        select = {"in_shapes": [mask_shape, [], [one, n, n]]}
        g.ops = [Op(0, "BATCH_MATMUL", [q, k], [s], {"adjY": True}),
                 Op(1, "SELECT_V2", [pad, low, s], [m], dict(select)),
                 Op(2, "SOFTMAX", [m], [p], {"beta": 1.0}),
                 Op(3, "SELECT_V2", [pad, zero, p], [p2], dict(select)),
                 Op(4, "BATCH_MATMUL", [p2, v], [o], {"adjY": True})]
        g.outputs = [o]
        if extra_reader:
            g.ops.append(Op(5, "ADD", [p, p], [_tensor(g, [one, n, n])], {"in_shapes": [[one, n, n]] * 2}))
            g.outputs.append(g.ops[-1].outputs[0])
        return g

    g = chain([one, one, n])
    assert [[op.index for op in c] for c in attention.find_chains(g)] == [[0, 1, 2, 3, 4]]
    attention.fuse(g)
    assert [op.kind for op in g.ops] == [attention.KIND] and g.ops[0].outputs == [g.outputs[0]]
    assert attention.find_chains(chain([one, n, one])) == []  # a mask per query row
    assert attention.find_chains(chain([one, one, n], extra_reader=True)) == []


@pytest.mark.parametrize("m, expected", [
    (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.0, (0, 0)), (2 ** -40, (0, 0)),
    (0.7071067811865476, (1518500250, 0)), (1 - 2 ** -40, (1 << 30, 1)),
])
def test_quantize_multiplier_matches_tflite(m, expected):
    """QuantizeMultiplier: frexp, round half away from zero, 2^31 folds into the shift."""
    assert quant.quantize_multiplier(m) == expected


@pytest.fixture(scope="module")
def firmware(art, tmp_path_factory):
    from embbert.device.build import build_firmware

    return build_firmware(art, "qemu-m4", backend="aot", out=tmp_path_factory.mktemp("fw"))


def test_embbert_build_aot_serves_infer_ids_bit_exact_on_qemu(art, firmware):
    from embbert.device.qemu import QemuDevice

    assert firmware["backend"] == "aot" and firmware["aot"]["arena_bytes"] > 0
    seqs, L = _sentences(art, 30)
    ref = artifact_micro_logits(art, seqs)
    man = json.loads((art / "manifest.json").read_text())
    with QemuDevice(firmware["elf"], "qemu-m4", timeout=60) as dev:
        info = dev.info()
        assert info["backend"] == "aot" and info["model_sha256"] == man["model_file"]["sha256"]
        assert info["labels"] == man["labels"] and info["max_len"] == L
        got = [dev.infer_ids(s) for s in seqs]
        host_len_aware = _host_lengths(art, seqs)
        assert [g["logits"] for g in got] == host_len_aware  # the device computes what the host build computes
        assert [g["logits"] for g in got] == ref  # length-aware and bit-identical to full-length TFLite-Micro
        short, long_ = (min(got, key=lambda g: g["n_tokens"]), max(got, key=lambda g: g["n_tokens"]))
        assert short["instructions"] < long_["instructions"]  # latency follows the sentence length
        c = dev.classify("Free entry in 2 a wkly comp to win FA Cup final tkts")
        assert c["label"] in man["labels"] and len(c["logits"]) == len(man["labels"])


def test_embbert_build_prints_the_plan_peak_and_what_is_live_there(art, tmp_path):
    """The static plan: the arena, the op where it peaks, the tensors (and scratch) live there."""
    proc = run_cli("build", art, "--board", "qemu-m4", "--backend", "aot", "--out", tmp_path / "fw", check=True)
    peak = json.loads((tmp_path / "fw" / "build.json").read_text())["aot"]["plan_peak"]
    arena = json.loads((tmp_path / "fw" / "build.json").read_text())["aot"]["arena_bytes"]
    assert peak["arena_bytes"] == arena and peak["live_bytes"] == sum(b["bytes"] for b in peak["live"]) <= arena
    assert all(b["offset"] + b["bytes"] <= arena for b in peak["live"])
    assert max(b["offset"] + b["bytes"] for b in peak["live"]) > arena - 16  # a buffer at the top is live there
    assert [b["offset"] for b in peak["live"]] == sorted(b["offset"] for b in peak["live"])
    assert f"aot arena {arena:,} B" in proc.stdout and f"peak at op {peak['op']} {peak['kind']}" in proc.stdout
    for b in peak["live"]:
        assert f"{b['bytes']:,} B  {b['name']}" in proc.stdout


def _host_lengths(art, seqs):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, HostModel(build_host(art, Path(tmp))) as hm:
        return [hm.infer(s) for s in seqs]


def test_full_length_firmware_is_bit_exact_on_qemu(art, tmp_path):
    from embbert.device.build import build_firmware
    from embbert.device.qemu import QemuDevice

    fw = build_firmware(art, "qemu-m4", backend="aot", out=tmp_path / "fw", full_length=True)
    seqs, L = _sentences(art, 20)
    ref = artifact_micro_logits(art, seqs)
    with QemuDevice(fw["elf"], "qemu-m4", timeout=60) as dev:
        assert [dev.infer_ids(s)["logits"] for s in seqs] == ref


@pytest.mark.slow
def test_full_embbert_preset_bit_exact_at_both_lengths(tmp_path_factory):
    """The real EmbBERT shape (L 256, d 128, 4 layers), random weights: host aot
    build vs host TFLite-Micro on 100 test sentences (minutes: a full conversion)."""
    from embbert.presets import get_preset

    art = _convert(tmp_path_factory, get_preset("embbert"))
    seqs, L = _sentences(art, 100)
    ref = artifact_micro_logits(art, seqs)
    with _host(art, tmp_path_factory) as hm:
        assert [hm.infer(list(padded(s, L)[0])) for s in seqs] == ref
        assert [hm.infer(s) for s in seqs] == ref


@pytest.mark.slow
def test_full_embbert_preset_arena_peak_holds_no_transposed_copy(tmp_path_factory):
    """The quickstart's shape (L 256, d 128, 4 layers): the optimized plan holds no
    transposed x (rhs_transpose.py), its attention output linear writes over its input
    (fully_connected_in_place), and the arena stays under 100,000 B (issue 15's target)."""
    from embbert.presets import get_preset

    art = _convert(tmp_path_factory, get_preset("embbert"))
    g = read_graph((art / "model.tflite").read_bytes())
    em = Emitter(g, "optimized")
    assert not any(op.kind == "TRANSPOSE" for op in g.ops)
    assert em.arena_bytes < 100_000
    peak = json.loads((art / "aot" / "optimized" / "plan.json").read_text())["plan_peak"]
    assert peak["arena_bytes"] == em.arena_bytes and not any("[1, 128, 256]" in b["name"] for b in peak["live"])


def test_qemu_m7_aot_gives_the_same_logits(art, tmp_path):
    from embbert.device.build import build_firmware
    from embbert.device.qemu import QemuDevice

    fw = build_firmware(art, "qemu-m7", backend="aot", out=tmp_path / "m7")
    seqs, _ = _sentences(art, 12)
    with QemuDevice(fw["elf"], "qemu-m7", timeout=60) as dev:
        assert [dev.infer_ids(s)["logits"] for s in seqs] == _host_lengths(art, seqs)


def test_headers_come_from_the_pinned_wheels_once():
    from embbert.convert.aot import headers

    tflm, gemmlowp = headers.include_dirs()  # setup.sh fetched them; a test session must not fetch again
    assert (tflm / "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h").is_file()
    assert (gemmlowp / "fixedpoint/fixedpoint.h").is_file()
    assert "xmos-ai-tools-1.4.2" in str(tflm) and "tensorflow-cpu-2.20.0" in str(gemmlowp)


def test_per_op_profile_on_qemu_reference_and_optimized_kernels(art, tmp_path):
    """convert/aot/profile.py: every op of the graph reported with its instructions; the two
    kernel folders give the same logits (the host build's), ours in fewer instructions."""
    from embbert.convert.aot.profile import profile

    seqs, L = _sentences(art, 3)
    ids = seqs[-1]  # the full-length sentence: its first n are real ids for every n
    runs = {k: profile(art, "qemu-m4", [8, L], ids, tmp_path / k, k)
            for k in ("reference", "optimized")}
    want = _host_lengths(art, [ids[:8], ids])
    for k, run in runs.items():
        g = read_graph((art / "model.tflite").read_bytes())
        Emitter(g, k)  # as generated: each attention chain one op, each causal PAD inside its conv, ...
        kinds = {op.kind for op in g.ops} - {"RESHAPE"}  # a reshape is no op: no code, no trace
        assert [run[8]["logits"], run[L]["logits"]] == want, k
        assert {o["kind"] for o in run[L]["ops"]} == kinds and all(o["instructions"] > 0 for o in run[L]["ops"])
        assert sum(o["macs"] for o in run[L]["ops"]) == macs(g, L)
    fc = {k: sum(o["instructions"] for o in run[L]["ops"] if o["kind"] == "FULLY_CONNECTED") for k, run in runs.items()}
    assert fc["optimized"] < fc["reference"] / 2
