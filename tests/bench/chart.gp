# gnuplot script for tests/bench/run.sh. Variables given with -e: out (the PNG), f64 and f256
# (data: x, req/s, p99 µs, colour 1-4, label; tab-separated), heading.
set terminal pngcairo size 1800,1200 font "sans,10" noenhanced
set output out
set datafile separator "\t"
set style fill solid 0.85 border -1
set boxwidth 0.8
set grid ytics
set key outside top center horizontal
set xtics rotate by 30 right font ",8" nomirror
set format y "%.0f"
set bmargin 9
set linetype 1 lc rgb "#1f77b4"
set linetype 2 lc rgb "#ff7f0e"
set linetype 3 lc rgb "#7f7f7f"
set linetype 4 lc rgb "#2ca02c"

set multiplot layout 2,2 title heading font ",13"

do for [panel = 1:4] {
  file = (panel % 2 == 1) ? f64 : f256
  conns = (panel % 2 == 1) ? "64" : "256"
  column_y = (panel <= 2) ? 2 : 3
  set title ((panel <= 2) ? "req/s, " : "p99 latency (µs, log scale), ") . conns . " connections"
  if (panel <= 2) { unset logscale y; set yrange [0:*] } else { set logscale y; set yrange [100:*] }
  plot file using 1:column_y:4:xtic(5) with boxes lc variable notitle, \
       file using 1:column_y:(sprintf("%.0f", column(column_y))) with labels offset 0,0.6 font ",7" notitle, \
       NaN with boxes lt 1 title "cachecar", \
       NaN with boxes lt 2 title "nginx proxy_cache", \
       NaN with boxes lt 3 title "upstream nginx direct", \
       NaN with boxes lt 4 title "nginx return (ceiling)"
}
unset multiplot
