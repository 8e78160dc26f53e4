# The training curve of a cpc-speech run: InfoNCE loss and the prediction accuracy of the steps k
# listed in `ks` against the optimiser step.
# Usage: gnuplot -e "dir='runs/demo'; ks='1 2 4 8 12'" scripts/plots/training.gp   (writes dir/training.png)
# Reads dir/training.csv (columns: step, seconds, lr, loss, accuracy_mean, grad_norm, data_seconds,
# accuracy_1 .. accuracy_K; see cpc::train).
if (!exists("dir")) dir = "."
if (!exists("ks")) ks = "1 2 4 8 12"
set terminal pngcairo size 1200,500 font 'sans,10'
set output dir.'/training.png'
set datafile separator ','
set key autotitle columnhead
set multiplot layout 1,2
set title 'InfoNCE loss (chance = log(N+1))'
set xlabel 'step'
set key top right
plot dir.'/training.csv' using 1:4 with lines lw 1 title 'loss'
set title 'prediction accuracy per step k (chance = 1/(N+1))'
set key top left
plot for [i = 1:words(ks)] dir.'/training.csv' using 1:(column(7 + int(word(ks, i)))) with lines title 'k = '.word(ks, i)
unset multiplot
