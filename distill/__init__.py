"""TinyBERT task-specific distillation: teacher fine-tuning, two-stage distillation that reads
kdaug shards, evaluation and a teacher-logits cache (see docs/distill.md)."""
