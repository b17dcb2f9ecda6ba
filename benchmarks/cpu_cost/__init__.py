"""The augmenter's own CPU cost per sentence, before and after a change, in one run."""
