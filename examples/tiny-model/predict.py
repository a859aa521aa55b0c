"""Run the tiny MLP on one 8x8 digit image (flattened to 64 values), standard library only.

    python predict.py 0 0 5 13 9 1 0 0 ...   (64 numbers)
"""

import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).parent


def load(path: Path) -> dict[str, list[float]]:
    data = path.read_bytes()
    (n,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n :]
    return {k: list(struct.unpack_from(f"<{(v['data_offsets'][1] - v['data_offsets'][0]) // 4}f", body,
                                       v["data_offsets"][0])) for k, v in header.items()}


def main(pixels: list[float]) -> int:
    w = load(HERE / "model.safetensors")
    hidden = [max(0.0, sum(w["hidden.weight"][i * 64 + j] * pixels[j] for j in range(64)) + w["hidden.bias"][i])
              for i in range(32)]
    scores = [sum(w["out.weight"][i * 32 + j] * hidden[j] for j in range(32)) + w["out.bias"][i] for i in range(10)]
    return max(range(10), key=scores.__getitem__)


if __name__ == "__main__":
    values = [float(x) for x in sys.argv[1:]] or [0.0] * 64
    print(main(values))
