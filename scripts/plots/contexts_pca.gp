# 1.28 s windows of the test split (mean-pooled contexts c_t) on their first two principal
# components, one colour per speaker: random init beside CPC. cpc-speech demo writes the points.
# Usage: gnuplot -e "dir='runs/demo'" scripts/plots/contexts_pca.gp   (writes dir/contexts_pca.png)
# Reads dir/pca_random_init.tsv and dir/pca_cpc.tsv (columns: pc1, pc2, speaker index).
if (!exists("dir")) dir = "."
set terminal pngcairo size 1200,560 font 'sans,10'
set output dir.'/contexts_pca.png'
set datafile separator '\t'
set multiplot layout 1,2
unset key
unset colorbox
set palette defined (0 '#1f77b4', 1 '#ff7f0e', 2 '#2ca02c', 3 '#d62728', 4 '#9467bd', 5 '#8c564b', 6 '#e377c2', 7 '#7f7f7f', 8 '#bcbd22', 9 '#17becf')
set xlabel 'PC 1'
set ylabel 'PC 2'
set title 'random init: 1.28 s windows (test split), one colour per speaker'
plot dir.'/pca_random_init.tsv' using 1:2:3 with points pt 7 ps 0.6 palette
set title 'CPC: 1.28 s windows (test split), one colour per speaker'
plot dir.'/pca_cpc.tsv' using 1:2:3 with points pt 7 ps 0.6 palette
unset multiplot
