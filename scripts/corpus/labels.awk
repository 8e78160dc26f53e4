# Turns one utterance's phone segments into one class index per 10 ms frame.
# Input lines: "<end_seconds> <phone>" in time order (segment i spans [end_{i-1}, end_i), the first
# starts at 0). Variables (-v): map (phones.map), source (arpa|espeak), phones (phones.txt), utt,
# samples (number of 16 kHz samples in the audio), offset (seconds added to every boundary).
# Frame f covers samples [160 f, 160 f + 160) and takes the class of the segment containing its
# centre, sample 160 f + 80; there are floor(samples / 160) frames, so labels never run past the
# audio, and frames after the last segment are "sil". Output: "<utt> c0 c1 ...".
# Exit status 3 (and a message naming the phone) when a phone has no mapping.
BEGIN {
  while ((getline line < map) > 0) {
    split(line, w, " ")
    if (w[1] == source) cls[w[2]] = w[3]
  }
  k = 0
  while ((getline line < phones) > 0) idx[line] = k++
  n = 0
}
{
  if (!($2 in cls)) {
    printf "%s: phone '%s' (%s) has no class in phones.map\n", utt, $2, source > "/dev/stderr"
    bad = 1
    exit 3
  }
  c = cls[$2]
  t = $1 + offset
  if (c == "+") {
    if (n > 0) { end_[n] = t; next }
    c = "sil"
  }
  n++
  end_[n] = t
  lab[n] = idx[c]
}
END {
  if (bad) exit 3
  frames = int(samples / 160)
  out = utt
  i = 1
  for (f = 0; f < frames; f++) {
    centre = (160 * f + 80) / 16000
    while (i <= n && end_[i] <= centre) i++
    out = out " " (i <= n ? lab[i] : idx["sil"])
  }
  print out
}
