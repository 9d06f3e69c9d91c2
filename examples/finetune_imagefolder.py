"""Fine-tune a cervattn model on your own images in a plain PyTorch loop.

Your data: one folder per class (torchvision ImageFolder), e.g. ``my_cells/train/<class>/*.png``
and ``my_cells/val/<class>/*.png``. The classifier is sized to your classes; with
``--pretrained TAG`` the rest of the network starts from released weights (a SIPaKMeD tag, or an
ImageNet-start tag such as ``rcan_densenet121.tv_in1k`` when the Hub is reachable).

    python examples/finetune_imagefolder.py --train my_cells/train --val my_cells/val \\
        --model rcan_densenet121 --epochs 10 --img-size 128

Research use only, not for clinical diagnosis.
"""

import argparse

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

import cervattn
from cervattn.data.transforms import eval_transform, train_transform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="ImageFolder of training images")
    parser.add_argument("--val", required=True, help="ImageFolder of validation images")
    parser.add_argument("--model", default="rcan_densenet121", help="architecture, or arch.tag with --pretrained")
    parser.add_argument("--pretrained", action="store_true", help="start from the tag's weights")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--out", default="finetuned.safetensors")
    args = parser.parse_args()

    probe = ImageFolder(args.train)
    model = cervattn.create_model(args.model, pretrained=args.pretrained, num_classes=len(probe.classes))
    train_set = ImageFolder(args.train, transform=train_transform(model, img_size=args.img_size))
    val_set = ImageFolder(args.val, transform=eval_transform(model, img_size=args.img_size))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=args.batch_size)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    best = -1.0
    for epoch in range(args.epochs):
        model.train()
        for images, labels in train_loader:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in val_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        accuracy = correct / len(val_set)
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}  val accuracy {accuracy:.3f}")
        if accuracy > best:
            best = accuracy
            save_file(model.state_dict(), args.out)
    # Reload later with: cervattn.create_model(args.model, num_classes=..., checkpoint_path=args.out)
    print(f"best val accuracy {best:.3f}; weights in {args.out}; classes {probe.classes}")


if __name__ == "__main__":
    main()
