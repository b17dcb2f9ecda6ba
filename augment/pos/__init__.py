"""Part of speech: spaCy tagging (`tagger`), the POS and inflections a word form can carry
(`lexicon`), re-tagging a candidate in the word's window (`window_tagger`) and the agreement
rules that keep or drop candidates (`filter`)."""
