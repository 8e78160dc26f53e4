# Mean episode return against environment steps for A2C and A2C + CPC, one panel per environment,
# with a band of +- one standard deviation over seeds (the form of the paper's Figure 6).
# Usage: gnuplot -e "dir='runs/rl'; envs='cue_corridor memory_maze'" scripts/plots/rl_returns.gp
# Reads dir/<env>_mean.csv (columns: env_steps, a2c_mean, a2c_std, cpc_mean, cpc_std; written by
# `cpc-rl demo`) and writes dir/returns.png.
if (!exists("dir")) dir = "runs/rl"
if (!exists("envs")) envs = "cue_corridor memory_maze"
n = words(envs)
set terminal pngcairo size 600*n,450 font 'sans,10'
set output dir.'/returns.png'
set datafile separator ','
set multiplot layout 1,n
set xlabel 'environment steps'
set ylabel 'mean episode return'
set key top left
set style fill transparent solid 0.25 noborder
do for [i = 1:n] {
  f = dir.'/'.word(envs, i).'_mean.csv'
  set title word(envs, i) noenhanced
  plot f using 1:($2-$3):($2+$3) with filledcurves lc rgb '#1f77b4' notitle, \
       f using 1:2 with lines lw 2 lc rgb '#1f77b4' title 'A2C', \
       f using 1:($4-$5):($4+$5) with filledcurves lc rgb '#d62728' notitle, \
       f using 1:4 with lines lw 2 lc rgb '#d62728' title 'A2C + CPC'
}
unset multiplot
