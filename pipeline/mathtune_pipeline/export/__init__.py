"""The fine-tuned model in the formats the rest of the ecosystem reads:
a PEFT LoRA adapter and a Hugging Face model (safetensors), with a model card."""
