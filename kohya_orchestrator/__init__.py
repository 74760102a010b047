"""kohya_orchestrator: a safe orchestration layer over kohya-ss/sd-scripts LoRA training."""

__version__ = "0.1.0"
