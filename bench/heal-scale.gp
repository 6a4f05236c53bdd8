# gnuplot -e "data='heal-scale-summary.dat'; out='heal-scale.png'; bauds='115200 921600'" heal-scale.gp
# The summary has one block per baud, in the order of bauds (columns: baud devices total_s x_one ...).
if (!exists("data")) data = 'heal-scale-summary.dat'
if (!exists("out")) out = 'heal-scale.png'
if (!exists("bauds")) bauds = '115200 921600'
set terminal pngcairo size 800,500 font ",11"
set output out
set title "healerd: N devices healed at once (1.0.0 -> 1.1.0, 92,288 bytes each)"
set xlabel "devices healed at once"
set ylabel "total time / time for one device"
set logscale x 2
set xrange [0.8:80]
set xtics (1, 8, 32, 64)
set yrange [0.9:*]
set grid
set key top left
plot for [i=1:words(bauds)] data index i-1 using 2:4 with linespoints lw 2 pt 7 \
       title word(bauds, i) . " baud", \
     1.1 with lines dt 2 lw 2 lc rgb "red" title "target 1.1"
