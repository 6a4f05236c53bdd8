# gnuplot -e "data='heal-profile-cpu.dat'; t0=SECONDS; phases='heal-profile-cpu-phases.dat'; out='x.png'; n=64; baud=921600" heal-profile-cpu.gp
# data columns: seconds busy healerd simulators kworkers (cores); phases: seconds-after-t0 "name"
set terminal pngcairo size 900,500 font ",10"
set output out
set title sprintf("Cores used during a %d-device heal at %d baud (2 cores; 25 ms samples)", n, baud)
set xlabel "s after healerd started"
set ylabel "cores"
set yrange [0:2.2]
set grid ytics
set key outside right top
other(b, h, s, k) = (b - h - s - k) > 0 ? (b - h - s - k) : 0
plot data using ($1 - t0):($3 + $4 + $5 + other($2, $3, $4, $5)) with filledcurves x1 lc rgb "#bbbbbb" title "other processes", \
     data using ($1 - t0):($3 + $4 + $5) with filledcurves x1 lc rgb "#f0a030" title "kworkers (pty)", \
     data using ($1 - t0):($3 + $4) with filledcurves x1 lc rgb "#4080d0" title "simulators", \
     data using ($1 - t0):3 with filledcurves x1 lc rgb "#d03030" title "healerd", \
     phases using 1:(2.1):2 with labels rotate by 90 right font ",8" notitle, \
     phases using 1:(0):(0):(2.1) with vectors nohead dt 2 lc rgb "black" notitle
