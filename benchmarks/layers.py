"""The distinct convolution layers of real networks as data: shape, stride, padding and count.

Each row is one distinct layer shape, named after its first occurrence in torchvision's model
(``layer2.0.conv2``), with how many layers of the network share that shape. Square images and
explicit symmetric padding, as in the PyTorch models.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One distinct layer: its name in the model, input size and channels, kernel, stride,
    padding, and how many of the network's layers have this shape."""

    name: str
    size: int
    c_in: int
    c_out: int
    k: int
    stride: int
    padding: int
    count: int


#: torchvision's resnet50 (v1.5: the stride is on the 3x3 of each stage's first block), 224 px;
#: 53 convolutions in 23 shapes (layer1's 64->256 1x1 conv3 and its downsample are one shape)
RESNET50 = (
    Layer("conv1", 224, 3, 64, 7, 2, 3, 1),
    Layer("layer1.0.conv1", 56, 64, 64, 1, 1, 0, 1),
    Layer("layer1.0.conv2", 56, 64, 64, 3, 1, 1, 3),
    Layer("layer1.0.conv3", 56, 64, 256, 1, 1, 0, 4),  # 3 conv3 and the downsample
    Layer("layer1.1.conv1", 56, 256, 64, 1, 1, 0, 2),
    Layer("layer2.0.conv1", 56, 256, 128, 1, 1, 0, 1),
    Layer("layer2.0.conv2", 56, 128, 128, 3, 2, 1, 1),
    Layer("layer2.0.conv3", 28, 128, 512, 1, 1, 0, 4),
    Layer("layer2.0.downsample", 56, 256, 512, 1, 2, 0, 1),
    Layer("layer2.1.conv1", 28, 512, 128, 1, 1, 0, 3),
    Layer("layer2.1.conv2", 28, 128, 128, 3, 1, 1, 3),
    Layer("layer3.0.conv1", 28, 512, 256, 1, 1, 0, 1),
    Layer("layer3.0.conv2", 28, 256, 256, 3, 2, 1, 1),
    Layer("layer3.0.conv3", 14, 256, 1024, 1, 1, 0, 6),
    Layer("layer3.0.downsample", 28, 512, 1024, 1, 2, 0, 1),
    Layer("layer3.1.conv1", 14, 1024, 256, 1, 1, 0, 5),
    Layer("layer3.1.conv2", 14, 256, 256, 3, 1, 1, 5),
    Layer("layer4.0.conv1", 14, 1024, 512, 1, 1, 0, 1),
    Layer("layer4.0.conv2", 14, 512, 512, 3, 2, 1, 1),
    Layer("layer4.0.conv3", 7, 512, 2048, 1, 1, 0, 3),
    Layer("layer4.0.downsample", 14, 1024, 2048, 1, 2, 0, 1),
    Layer("layer4.1.conv1", 7, 2048, 512, 1, 1, 0, 2),
    Layer("layer4.1.conv2", 7, 512, 512, 3, 1, 1, 2),
)

#: torchvision's vgg16: thirteen dense 3x3 convolutions, stride 1, padding 1, in 9 shapes
VGG16 = (
    Layer("features.0", 224, 3, 64, 3, 1, 1, 1),
    Layer("features.2", 224, 64, 64, 3, 1, 1, 1),
    Layer("features.5", 112, 64, 128, 3, 1, 1, 1),
    Layer("features.7", 112, 128, 128, 3, 1, 1, 1),
    Layer("features.10", 56, 128, 256, 3, 1, 1, 1),
    Layer("features.12", 56, 256, 256, 3, 1, 1, 2),
    Layer("features.17", 28, 256, 512, 3, 1, 1, 1),
    Layer("features.19", 28, 512, 512, 3, 1, 1, 2),
    Layer("features.24", 14, 512, 512, 3, 1, 1, 3),
)
