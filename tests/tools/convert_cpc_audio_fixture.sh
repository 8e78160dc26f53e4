#!/usr/bin/env bash
# scripts/convert_cpc_audio.py converts the committed CPC_audio checkpoint folder
# (tests/golden/cpc_audio_checkpoint: checkpoint_3.pt + checkpoint_args.json, written by
# tests/golden/gen_cpc_audio.py with torch.save) WITHOUT PyTorch: `import torch` is made to fail, so
# the default reader is the converter's own (zipfile + pickle + numpy). The results (all layers and
# --layers 1) must equal the committed converted fixtures, which gen_cpc_audio.py made by reading the
# .pt with torch.load and which tests/unit/test_cpc_audio.cpp matches against PyTorch's features:
# same tensor names, dtypes, shapes, bytes and metadata. Where PyTorch is importable, torch.load and
# the numpy reader must also give identical arrays for the whole checkpoint (optimizer state
# included), and the default reader with PyTorch visible the same file. Then the numpy reader's
# refusals: a file that is not a zip, a float16 tensor, an unknown class, a short storage, and
# --reader torch without PyTorch, each one line with exit status 1.
# Usage: convert_cpc_audio_fixture.sh SOURCE_DIR WORK_DIR. Exit 77 (skipped) without python3 + numpy.
set -uo pipefail
src=$1
work=$2
py=
for candidate in python3 /usr/bin/python3; do  # the first Python 3 with numpy
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import numpy' 2>/dev/null; then
    py=$candidate
    break
  fi
done
[[ -n "$py" ]] || exit 77
rm -rf "$work" && mkdir -p "$work/notorch/torch"
echo 'raise ImportError("PyTorch is hidden by convert_cpc_audio_fixture.sh")' > "$work/notorch/torch/__init__.py"
golden=$src/tests/golden
conv=$src/scripts/convert_cpc_audio.py
notorch() { PYTHONPATH="$work/notorch${PYTHONPATH:+:$PYTHONPATH}" "$py" "$@"; }
fail=0

notorch -c 'import torch' 2>/dev/null && { echo "FAIL: torch still importable"; exit 1; }
for spec in "cpc_audio_tiny.safetensors:" "cpc_audio_tiny_layer1.safetensors:--layers 1"; do
  name=${spec%%:*}
  # shellcheck disable=SC2086 # the options are words
  if ! notorch "$conv" "$golden/cpc_audio_checkpoint/checkpoint_3.pt" "$work/$name" ${spec#*:}; then
    echo "FAIL: converting to $name"
    fail=1
    continue
  fi
  "$py" - "$golden/$name" "$work/$name" <<'EOF' || fail=1
import json, struct, sys
import numpy as np
def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "U64": "<u8"}
    return meta, {k: (v["dtype"], v["shape"], np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]],
                                                         dtype=dtypes[v["dtype"]]).reshape(v["shape"]))
                  for k, v in header.items()}
(want_meta, want), (got_meta, got) = read(sys.argv[1]), read(sys.argv[2])
bad = []
if want_meta != got_meta:
    bad.append("metadata %r != %r" % (got_meta, want_meta))
if sorted(want) != sorted(got):
    bad.append("tensors differ: %s" % sorted(set(got) ^ set(want)))
for k in sorted(set(want) & set(got)):
    if want[k][:2] != got[k][:2] or want[k][2].tobytes() != got[k][2].tobytes():
        same_shape = want[k][1] == got[k][1]
        diff = np.max(np.abs(want[k][2].astype(float) - got[k][2].astype(float))) if same_shape else -1
        bad.append("%s: %s %s differs (max |diff| %g)" % (k, got[k][0], got[k][1], diff))
if bad:
    print("FAIL: %s: %s" % (sys.argv[2], "; ".join(bad[:5])))
    sys.exit(1)
print("%s: %d tensors equal to the committed fixture (%d values)" % (sys.argv[1].split("/")[-1], len(want),
      sum(v[2].size for v in want.values())))
EOF
done

# Both readers on the whole checkpoint, where PyTorch is importable.
if "$py" -c 'import torch' 2>/dev/null; then
  "$py" - "$src/scripts" "$golden/cpc_audio_checkpoint/checkpoint_3.pt" <<'EOF' || fail=1
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import convert_cpc_audio as cc
def same(x, y, path):
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        ok = isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype and x.shape == y.shape
        if not (ok and np.array_equal(x, y)):
            raise SystemExit("FAIL: %s differs between the torch and numpy readers" % path)
        return 1
    if isinstance(x, dict) and isinstance(y, dict) and list(x) == list(y):
        return sum(same(x[k], y[k], path + "/" + str(k)) for k in x)
    if isinstance(x, (list, tuple)) and type(x) == type(y) and len(x) == len(y):
        return sum(same(u, v, path + "/%d" % i) for i, (u, v) in enumerate(zip(x, y)))
    if x != y:
        raise SystemExit("FAIL: %s: %r (torch) != %r (numpy)" % (path, x, y))
    return 0
import torch
# torch.load with its full unpickler (a committed file: trusted): the converter's --reader torch uses
# weights_only=True, which torch 1.13 refuses on the optimizer's floats.
n = same(cc.tensors_to_numpy(torch.load(sys.argv[2], map_location="cpu")), cc.load_checkpoint(sys.argv[2], "numpy"),
         "checkpoint")
print("torch.load and the numpy reader: %d identical arrays" % n)
EOF
  if ! "$py" "$conv" "$golden/cpc_audio_checkpoint/checkpoint_3.pt" "$work/auto.safetensors" >/dev/null ||
    ! cmp -s "$work/auto.safetensors" "$golden/cpc_audio_tiny.safetensors"; then
    echo "FAIL: the default reader with PyTorch visible gives another file"
    fail=1
  fi
else
  echo "PyTorch not importable: the torch.load / numpy reader comparison is not run"
fi

# The numpy reader's refusals, on broken copies of the fixture.
"$py" - "$golden/cpc_audio_checkpoint/checkpoint_3.pt" "$work" <<'EOF' || fail=1
import sys, zipfile
src, work = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(src)
entries = {i.filename: z.read(i.filename) for i in z.infolist()}
pkl = [n for n in entries if n.endswith("/data.pkl")][0]
def variant(name, edit_pkl=None, edit_entries=None):
    e = dict(entries)
    if edit_pkl:
        e[pkl] = edit_pkl(e[pkl])
    if edit_entries:
        edit_entries(e)
    with zipfile.ZipFile("%s/%s.pt" % (work, name), "w") as out:
        for k, v in e.items():
            out.writestr(k, v)
assert b"ctorch\nFloatStorage\n" in entries[pkl] and b"ccollections\nOrderedDict\n" in entries[pkl]
variant("half", lambda p: p.replace(b"ctorch\nFloatStorage\n", b"ctorch\nHalfStorage\n"))
variant("unknown", lambda p: p.replace(b"ccollections\nOrderedDict\n", b"cos\nsystem\n", 1))
def shorten(e):
    key = pkl[:-len("data.pkl")] + "data/0"
    e[key] = e[key][:-4]
variant("short", edit_entries=shorten)
open("%s/legacy.pt" % work, "wb").write(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")  # legacy magic number
EOF
cp "$golden/cpc_audio_checkpoint/checkpoint_args.json" "$work/"
expect() {  # expect FILE MESSAGE_PART [converter options]
  local file=$1 want=$2
  shift 2
  out=$(notorch "$conv" "$work/$file" "$work/refused.safetensors" "$@" 2>&1)
  rc=$?
  if [[ $rc -ne 1 || "$out" != "convert_cpc_audio: error: "*"$want"* || $(printf '%s\n' "$out" | wc -l) -ne 1 ]]; then
    echo "FAIL: $file: expected exit 1 and one line containing '$want', got $rc: $out"
    fail=1
  fi
}
expect legacy.pt "not a zip-format torch.save file"
expect half.pt "holds a torch.HalfStorage tensor"
expect unknown.pt "holds a os.system object, which the converter does not know"
expect short.pt "storage 0 holds"
cp "$golden/cpc_audio_checkpoint/checkpoint_3.pt" "$work/checkpoint_3.pt"
expect checkpoint_3.pt "--reader torch: PyTorch is not importable" --reader torch
[[ ! -e "$work/refused.safetensors" ]] || { echo "FAIL: a refused input wrote an output"; fail=1; }
[[ $fail -eq 0 ]] && echo "converted without PyTorch: equal to the committed fixtures; refusals as expected"
exit $fail
