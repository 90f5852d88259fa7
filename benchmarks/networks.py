"""The distinct convolution layers of real networks, each with its multiplicity, as configurations.

The layers are :mod:`benchmarks.layers`' tables; each becomes a configuration weighted by how
many of the network's layers share its shape (the weight its time gets in the whole-network
figure), at a batch per output size that keeps a preset within its budget.
"""

from __future__ import annotations

from .layers import RESNET50, VGG16, Layer
from .matrix import Conv

#: the batch at each output size: at least 8 where the images are small, so that dw's reduction
#: over N * OH * OW is not judged on a 49-pixel layer
RESNET50_BATCH = {112: 2, 56: 2, 28: 4, 14: 8, 7: 8}
VGG16_BATCH = {224: 2, 112: 2, 56: 4, 28: 4, 14: 8}


#: each network's layers and its batch at each input size
NETWORKS: dict[str, tuple[tuple[Layer, ...], dict[int, int]]] = {
    "resnet50": (RESNET50, RESNET50_BATCH),
    "vgg16": (VGG16, VGG16_BATCH),
}


def network_convs(network: str) -> list[Conv]:
    """The configurations of ``network``'s distinct layers, each weighted by its count.

    Raises
    ------
    ValueError
        If the network is not one of :data:`NETWORKS`.
    """
    if network not in NETWORKS:
        raise ValueError(f"Unknown network {network!r}; known networks: {', '.join(NETWORKS)}")
    layers, batch = NETWORKS[network]
    return [
        Conv(
            f"{network}.{layer.name}",
            n=batch[layer.size // layer.stride],
            size=layer.size,
            c_in=layer.c_in,
            c_out=layer.c_out,
            k=layer.k,
            stride=layer.stride,
            padding=layer.padding,
            network=network,
            weight=layer.count,
        )
        for layer in layers
    ]
