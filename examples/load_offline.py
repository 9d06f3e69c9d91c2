"""Load released weights on an air-gapped machine from a local mirror folder.

On a connected machine, copy the release once (a folder per repository: config.json,
model.safetensors, README.md):

    hf download cervattn/rcan_densenet121.sipakmed_cells_64 --local-dir mirror/cervattn/rcan_densenet121.sipakmed_cells_64

Carry ``mirror/`` to the offline machine, then:

    HF_HUB_OFFLINE=1 CERVATTN_MIRROR=mirror python examples/load_offline.py --model rcan_densenet121.sipakmed_cells_64

The repository's own ``hub/`` folder is such a mirror and is used automatically in a source
checkout. The sha256 of the file is checked against cervattn's release table before loading.

Research use only, not for clinical diagnosis.
"""

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # must be set before huggingface_hub is imported

import cervattn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a released arch.tag, see cervattn.list_pretrained()")
    parser.add_argument("--mirror", default=None, help="mirror folder (default: $CERVATTN_MIRROR, then hub/)")
    args = parser.parse_args()
    model = cervattn.create_model(args.model, pretrained=True, mirror=args.mirror).eval()
    cfg = model.pretrained_cfg
    print(f"loaded {args.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"input {cfg['input_size']}, classes {list(cfg['label_names'])}")


if __name__ == "__main__":
    main()
