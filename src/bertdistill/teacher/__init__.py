"""The teacher stage: fine-tune a Hugging Face encoder (`model`), or adopt a classifier someone already fine-tuned
(`adoption`), then export it to ONNX Runtime fp32 / int8 (`onnx_export`).

Where a change goes:
- a new teacher family (an encoder architecture): one entry in `backbones.FAMILIES`;
- a new offline pretrained model: one entry in `pretrained.ALIASES`;
- data-parallel fine-tuning across processes: `distributed`.
"""
