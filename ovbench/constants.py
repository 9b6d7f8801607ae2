"""Values every layer agrees on, so that none has to import another layer to learn them."""

IGNORE = 255  # the label value no metric counts (void, unlabeled, a class outside the vocabulary)
VC_WINDOWS = (8, 16)  # the video-consistency windows VSPW reports (VC8, VC16)
