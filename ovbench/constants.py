"""Values every layer agrees on, so that none has to import another layer to learn them."""

IGNORE = 255  # the label value no metric counts (void, unlabeled, a class outside the vocabulary)
WIDE_IGNORE = 65535  # the same for 16-bit labels, where a data set has more than 255 classes (A-847, PC-459)
VC_WINDOWS = (8, 16)  # the video-consistency windows VSPW reports (VC8, VC16)
