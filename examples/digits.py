"""Find handwritten digits on a larger image with a scanning MLP turned into a Conv2d stack.

    pip install -e ".[examples]"          # scikit-learn, for its 8×8 digits (shipped, no download)
    python examples/digits.py             # about ten seconds
    python examples/digits.py --keep DIR  # also keep the MLP, the stack and the canvas in DIR

1. Train, with plain numpy, an MLP on 8×8 patches (digits_model.py: 64 → 128 → 128 → 11, its
   layers sharing 2×2 blocks): the ten digits and an 11th class, "background", for patches that
   are not exactly one digit (blank, or parts of neighbours).
2. Save it as a weight file scan2conv reads (npz, W1 b1 W2 b2 W3 b3, dense (in, out) matrices)
   and convert it with scan2conv, which finds the shared blocks: a distributed Conv2d stack.
3. Place test-set digits (never trained on) on a 32×96 canvas at known positions, run the stack
   over the whole canvas in one pass, and read where it finds each digit and which one.
4. Check: the conv output equals the MLP run patch by patch; scan2conv.verify agrees; every
   placed digit is found at its place with its label and nothing else is found. Exit 1 if not.
"""
import argparse
import os
import sys
import tempfile

# the matrices are small: BLAS threads only wait for each other (many times slower on a busy machine)
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

import digits_model as model  # noqa: E402

SEED = 8
PATCH, STRIDE = 8, 4              # the MLP sees 8×8 pixels; the scan moves 4 pixels at a time
BACKGROUND = 10                   # class 10: "no digit exactly here"
CANVAS, PLACED = (32, 96), 8      # canvas rows × columns; digits placed on it
TRAIN_CANVASES, EVAL_CANVASES = 400, 100


def load_digits_split(rng):
    """(x_train, y_train, x_test, y_test): images (n, 8, 8) scaled to [0, 1], labels (n,)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x, y = digits.images / 16.0, digits.target
    order = rng.permutation(len(y))
    cut = len(y) * 2 // 3
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def grid_shape():
    """Scan positions (rows, columns) of the canvas: P = (size − 8) // 4 + 1 per axis."""
    return tuple((n - PATCH) // STRIDE + 1 for n in CANVAS)


def place(images, labels, rng, count=PLACED):
    """A canvas (rows, columns) with `count` digits at scan positions, none overlapping →
    (canvas, {(row, column) of a digit's top-left pixel: label})."""
    canvas, placed = np.zeros(CANVAS), {}
    rows, cols = grid_shape()
    pick = rng.choice(len(labels), size=count, replace=False)
    for i in pick:
        while True:
            r, c = rng.integers(rows) * STRIDE, rng.integers(cols) * STRIDE
            if all(abs(r - pr) >= PATCH or abs(c - pc) >= PATCH for pr, pc in placed):
                break
        canvas[r:r + PATCH, c:c + PATCH] = images[i]
        placed[(int(r), int(c))] = int(labels[i])
    return canvas, placed


def windows(canvas):
    """Every scan window of the canvas → (patches (P_h·P_w, 64) row-major, their (row, col))."""
    rows, cols = grid_shape()
    at = [(p * STRIDE, q * STRIDE) for p in range(rows) for q in range(cols)]
    return np.stack([canvas[r:r + PATCH, c:c + PATCH].ravel() for r, c in at]), at


def background_patches(images, labels, rng, canvases):
    """Windows of canvases of training digits that do not hold exactly one digit: blank ones and
    parts of one to four neighbours → (n, 64)."""
    out = []
    for _ in range(canvases):
        canvas, placed = place(images, labels, rng)
        patches, at = windows(canvas)
        out.append(patches[[pos not in placed for pos in at]])
    return np.concatenate(out)


def training_set(x, y, rng):
    """Each training digit five times, and background windows → (v (n, 64), labels (n,))."""
    back = background_patches(x, y, rng, TRAIN_CANVASES)
    v = np.concatenate([np.tile(x.reshape(len(x), -1), (5, 1)), back])
    labels = np.concatenate([np.tile(y, 5), np.full(len(back), BACKGROUND)])
    return v, labels


def save_mlp(weights, path):
    """The weight file scan2conv reads: [W1, b1, W2, b2, W3, b3] as named arrays, W (in, out)."""
    names = [f"{kind}{l // 2 + 1}" for l, kind in enumerate("Wb" * (len(weights) // 2))]
    np.savez(path, **dict(zip(names, weights)))


def to_conv(mlp_path, stack_path):
    """scan2conv: the MLP file → a Conv2d stack (ConvertedStack), also written to stack_path."""
    from scan2conv import convert, load_mlp
    mlp = load_mlp(mlp_path, channels=1, kernel=(PATCH, PATCH))
    stack = convert(mlp, kernel=(PATCH, PATCH), flatten="hwc")   # stride: the blocks' natural 4×4
    stack.save(stack_path, force=True)
    return stack


def detections(scores):
    """scores (11, P_h, P_w) → {(row, column) of the window's top-left pixel: digit} wherever
    the best class is not background."""
    best = scores.argmax(axis=0)
    return {(int(p) * STRIDE, int(q) * STRIDE): int(best[p, q])
            for p, q in zip(*np.nonzero(best != BACKGROUND))}


def score(found, placed):
    """Counts: right (place and label), wrong label, missed, found where no digit was."""
    return np.array([sum(found.get(at) == k for at, k in placed.items()),
                     sum(at in found and found[at] != k for at, k in placed.items()),
                     sum(at not in found for at in placed),
                     sum(at not in placed for at in found)])


def position_map(found):
    """The scan grid as text: the digit found at each position, · for background."""
    rows, cols = grid_shape()
    return ["  " + " ".join(str(found.get((p * STRIDE, q * STRIDE), "·")) for q in range(cols))
            for p in range(rows)]


def patch_by_patch(weights, canvas, y):
    """Max |conv output − the MLP run on each window| over all positions and classes."""
    patches, at = windows(canvas)
    z = model.mlp_forward(weights, patches)
    conv = np.stack([y[:, r // STRIDE, c // STRIDE] for r, c in at])
    return float(np.abs(conv - z).max())


def evaluate(stack, x_test, y_test, rng):
    """The stack over EVAL_CANVASES more canvases of held-out digits → (counts, canvases right)."""
    totals, exact = np.zeros(4, dtype=int), 0
    for _ in range(EVAL_CANVASES):
        canvas, placed = place(x_test, y_test, rng)
        found = detections(stack.forward(canvas[None, None])[0])
        totals += score(found, placed)
        exact += found == placed
    return totals, exact


def picture(canvas):
    """The canvas as text, a character per column and two rows (a character is about twice as
    tall as wide): each the mean of its two pixels."""
    half = canvas.reshape(CANVAS[0] // 2, 2, CANVAS[1]).mean(axis=1)
    shades = np.array(list(" .:+#"))
    edge = "  +" + "-" * CANVAS[1] + "+"
    rows = ["  |" + "".join(row) + "|" for row in shades[np.minimum((half * 5).astype(int), 4)]]
    return [edge, *rows, edge]


def report_canvas(canvas, placed, found):
    print(f"canvas        {CANVAS[0]}×{CANVAS[1]} pixels, {len(placed)} held-out digits placed; "
          f"{'×'.join(map(str, grid_shape()))} scan positions, stride {STRIDE}×{STRIDE}")
    print("\n".join(picture(canvas)))
    print("placed        " + ", ".join(f"{k} at {at}" for at, k in sorted(placed.items())))
    print("found         " + ", ".join(f"{k} at {at}" for at, k in sorted(found.items())))
    print("scan positions (the digit found, · background):")
    print("\n".join(position_map(found)))


def report_costs(mlp_path, canvas_path):
    """What scan2conv.explain counts for one canvas: parameters and multiply-adds of each form."""
    from scan2conv import explain
    costs = explain(mlp_path, x=canvas_path, kernel=(PATCH, PATCH)).data["costs"]
    mlp, conv = costs["scanning_mlp"], costs["distributed"]
    print(f"cost          one canvas: the scanning MLP {mlp['macs']:,} multiply-adds, "
          f"{mlp['params']:,} parameters; the distributed stack {conv['macs']:,}, {conv['params']:,}")


def run(folder):
    """The whole example; files go to folder → True when every check passes."""
    rng = np.random.default_rng(SEED)
    x_train, y_train, x_test, y_test = load_digits_split(rng)
    v, labels = training_set(x_train, y_train, rng)
    print(f"digits        scikit-learn's 8×8 digits: {len(y_train)} to train on, {len(y_test)} "
          "held out")
    print(f"training      shared 2×2 blocks of {' → '.join(map(str, model.CHANNELS))} channels on "
          f"{len(v):,} patches: each training digit 5 times, "
          f"{int((labels == BACKGROUND).sum()):,} background windows")
    weights = model.dense(model.train(v, labels, rng))
    z = model.mlp_forward(weights, x_test.reshape(len(x_test), -1))
    print(f"held out      {np.mean(z.argmax(axis=1) == y_test):.1%} of the {len(y_test)} held-out "
          "digits classified right, each alone in its patch")
    mlp_path, stack_path = (os.path.join(folder, n) for n in ("digits_mlp.npz", "digits_stack.npz"))
    save_mlp(weights, mlp_path)
    print(f"MLP file      {' → '.join(str(w.shape[0]) for w in weights[::2])} → 11, dense (in, out) "
          "matrices W1 b1 W2 b2 W3 b3")
    stack = to_conv(mlp_path, stack_path)
    print(f"conv stack    {str(stack).splitlines()[0]}")
    canvas, placed = place(x_test, y_test, rng)
    canvas_path = os.path.join(folder, "canvas.npy")
    np.save(canvas_path, canvas[:, :, None])                     # (H, W, C), channels last
    y = stack.forward(canvas[None, None])[0]                     # (1, 1, 32, 96) → (11, 7, 23)
    found = detections(y)
    report_canvas(canvas, placed, found)
    report_costs(mlp_path, canvas_path)
    checks = check(weights, canvas, y, mlp_path, canvas_path, stack_path, found, placed)
    totals, exact = evaluate(stack, x_test, y_test, rng)
    n = EVAL_CANVASES * PLACED
    print(f"{EVAL_CANVASES} more canvases of held-out digits: {totals[0]} of {n} found at their "
          f"place with the right label ({totals[0] / n:.1%}); {totals[1]} with a wrong label, "
          f"{totals[2]} missed, {totals[3]} found where no digit was; {exact} canvases exactly right")
    print("OK" if checks else "FAILED")
    return checks


def check(weights, canvas, y, mlp_path, canvas_path, stack_path, found, placed):
    """The three checks, printed → True when all pass."""
    from scan2conv import verify
    diff = patch_by_patch(weights, canvas, y)
    report = verify(mlp_path, x=canvas_path, stack=stack_path, channels=1)
    right, wrong, missed, extra = score(found, placed)
    results = [
        (diff <= 1e-10, f"conv output = the MLP run on each of the {len(windows(canvas)[1])} "
                        "patches, within 1e-10"),
        (report.ok, f"scan2conv.verify: the scanning MLP and the {', '.join(report.errors)} stacks "
                    "agree on the canvas"),
        (right == len(placed) and extra == 0,
         f"{right} of {len(placed)} placed digits found at their place with their label, "
         f"{extra} found elsewhere"),
    ]
    for passed, text in results:
        print(f"{'check' if passed else 'FAILED':<14}{text}")
    return all(passed for passed, _ in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", metavar="DIR", help="write digits_mlp.npz, digits_stack.npz and "
                                                  "canvas.npy here (replacing them)")
    args = ap.parse_args()
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sys.exit("digits.py needs scikit-learn: pip install -e '.[examples]'")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        return 0 if run(args.keep) else 1
    with tempfile.TemporaryDirectory() as folder:
        return 0 if run(folder) else 1


if __name__ == "__main__":
    sys.exit(main())
