"""Use a cervattn model as a timm feature extractor (stage outputs, attention included).

    python examples/feature_extractor.py --model rcan_densenet121 --image examples/images/Dyskeratotic_003_01.webp

Research use only, not for clinical diagnosis.
"""

import argparse

import timm
import torch
from PIL import Image

import cervattn  # noqa: F401  (registers cervattn's models with timm)
from cervattn.data.transforms import eval_transform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rcan_densenet121")
    parser.add_argument("--image", default="examples/images/Dyskeratotic_003_01.webp")
    parser.add_argument("--img-size", type=int, default=None, help="input size (default: the model's cfg)")
    args = parser.parse_args()

    # Any timm habit works after `import cervattn`: features_only, out_indices, feature_info.
    extractor = timm.create_model(args.model, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    transform = eval_transform(extractor, img_size=args.img_size)
    x = transform(Image.open(args.image).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        features = extractor(x)
    for info, feature in zip(extractor.feature_info.get_dicts(), features):
        print(f"{info['module']:<28} stride {info['reduction']:>2}  {tuple(feature.shape)}")

    # Pooled embeddings for retrieval or a linear probe: forward_head(pre_logits=True).
    model = cervattn.create_model(args.model).eval()
    with torch.no_grad():
        embedding = model.forward_head(model.forward_features(x), pre_logits=True)
    print("embedding", tuple(embedding.shape))


if __name__ == "__main__":
    main()
