"""The ablation's vocabulary: the arms (no augmentation, and each augmentation with its `kdaug
augment` settings), the students, the budgets and the files a run keeps."""

from __future__ import annotations

NODA = "noda"
COND = "label-conditional"
DA_ARMS: dict[str, dict[str, str | None]] = {  # arm -> its augment settings (mlm None: --mlm)
    "da-vectors": {"mlm": "none", "mode": "exact"},
    "da-exact": {"mlm": None, "mode": "exact"},
    "da-fast": {"mlm": None, "mode": "fast"},
    # the label-conditional masked LM: --mlm adapted on the subset with `adapt-mlm --label-column`
    "da-cond": {"mlm": COND, "mode": "exact"},
}
DA_ARM_NAMES = tuple(DA_ARMS)
ARMS = (NODA, *DA_ARM_NAMES)
DEFAULT_ARMS = (NODA, "da-vectors", "da-exact", "da-fast")
BILSTM = "bilstm"
EQUAL_EPOCHS, EQUAL_STEPS = "equal-epochs", "equal-steps"
OUTPUTS = ("results.json", "table.md", "ablation.png", "ablation-sizes.png")
