// PNG plots of pipeline experiments, drawn by gnuplot (Debian's gnuplot-nox).
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "bench/throughput_experiment.hpp"
#include "kernels/error.hpp"

namespace troupe {

namespace {

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

// Writes `script` to `path`, runs gnuplot on it, and removes it.
void run_gnuplot(const std::filesystem::path& path, const std::string& script) {
  std::ofstream(path) << script;
  std::string cmd = "gnuplot " + path.string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0) fail("gnuplot failed on {}", path.string());
  std::filesystem::remove(path);
}

void gantt(const RunMetrics& m, const std::filesystem::path& dat, const std::filesystem::path& png) {
  double t0 = 1e300;
  for (const auto& s : m.timeline) t0 = std::min(t0, s.start_time);
  std::ofstream out(dat);
  for (const auto& s : m.timeline) {
    if (s.rank % m.point.tp != 0) continue;
    const double begin = (s.start_time + s.recv_seconds - t0) * 1e3;
    out << fmt::format("{} {:.3f} {:.3f} {}\n", s.rank / m.point.tp, begin, begin + s.compute_seconds * 1e3,
                       s.micro_batch % 8);
  }
  out.close();
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1200," << 160 + 40 * m.point.pp << " font 'sans,9'\n"
     << "set output '" << png.string() << "'\n"
     << "set title 'pp=" << m.point.pp << " micro-batches=" << m.micro_batches << " batch=" << m.point.batch
     << ": which micro-batch each stage computes when (colour = micro-batch id mod 8)'\n"
     << "set xlabel 'ms'\nset ylabel 'stage'\nset yrange [-0.6:" << m.point.pp - 0.4 << "]\nset ytics 1\nunset key\n"
     << "plot '" << dat.string()
     << "' using (($2+$3)/2):1:(($3-$2)/2):(0.4):4 with boxxyerror fs solid 0.8 lc variable\n";
  run_gnuplot(png.string() + ".gp", gp.str());
}

}  // namespace

std::vector<std::filesystem::path> write_plots(const std::vector<RunMetrics>& runs,
                                               const std::filesystem::path& out_dir) {
  std::vector<std::filesystem::path> files;
  if (!have_gnuplot()) return files;
  // One data file per series (pp=1 belongs to every series), rows sorted by pp, so gnuplot draws
  // connected lines: micro-batches = pp, = pp + 1, and 1 (no overlap).
  auto write_series = [&](const std::string& name, const std::function<bool(const RunMetrics&)>& keep) {
    std::vector<const RunMetrics*> rows;
    for (const auto& m : runs)
      if (m.point.pp == 1 || keep(m)) rows.push_back(&m);
    std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->point.pp < b->point.pp; });
    auto path = out_dir / (name + ".dat");
    std::ofstream out(path);
    out << "# pp micro_batches batch steady_tokens_per_s speedup_vs_pp1 measured_over_ideal ttft_p50 ttft_p90 ttft_p99 "
           "tpot_p50 tpot_p90 tpot_p99 bubble\n";
    for (const auto* m : rows)
      out << fmt::format("{} {} {} {:.3f} {:.3f} {:.3f} {:.2f} {:.2f} {:.2f} {:.3f} {:.3f} {:.3f} {:.3f}\n",
                         m->point.pp, m->micro_batches, m->point.batch, m->steady_tokens_per_s, m->speedup_vs_pp1,
                         m->measured_over_ideal, m->ttft_ms.p50, m->ttft_ms.p90, m->ttft_ms.p99, m->tpot_ms.p50,
                         m->tpot_ms.p90, m->tpot_ms.p99, m->bubble_fraction);
    return fmt::format("'{}'", path.string());
  };
  const std::string eq =
      write_series("series-mb-pp", [](const RunMetrics& m) { return m.micro_batches == m.point.pp; });
  const std::string plus =
      write_series("series-mb-pp-plus-1", [](const RunMetrics& m) { return m.micro_batches == m.point.pp + 1; });
  const std::string one = write_series("series-mb-1", [](const RunMetrics& m) { return m.micro_batches == 1; });
  const auto all_path = out_dir / "series-all.dat";
  {
    std::ofstream out(all_path);
    for (const auto& m : runs) out << fmt::format("{} {} {:.3f}\n", m.point.pp, m.micro_batches, m.steady_tokens_per_s);
  }
  const std::string all = fmt::format("'{}'", all_path.string());
  auto plot = [&](const std::string& name, const std::string& body) {
    auto png = out_dir / (name + ".png");
    run_gnuplot(out_dir / (name + ".gp"), "set terminal pngcairo size 800,500 font 'sans,10'\nset output '" +
                                              png.string() + "'\nset grid\nset key left top\n" + body);
    files.push_back(png);
  };
  plot("throughput_vs_pp",
       "set title 'Steady-state output throughput vs pipeline depth'\nset xlabel 'pp (stages)'\nset ylabel 'output "
       "tokens/s'\n"
       "set logscale x 2\nplot " +
           eq + " using 1:4 with linespoints lw 2 title 'micro-batches = pp', " + plus +
           " using 1:4 with linespoints lw 2 title 'micro-batches = pp + 1', " + one +
           " using 1:4 with linespoints lw 2 title '1 micro-batch (no overlap)'\n");
  plot("efficiency_vs_pp",
       "set title 'Pipeline efficiency: speedup over pp=1, divided by pp'\nset xlabel 'pp (stages)'\nset ylabel "
       "'efficiency'\n"
       "set yrange [0:1.1]\nset logscale x 2\nplot " +
           eq + " using 1:($5/$1) with linespoints lw 2 title 'micro-batches = pp', " + plus +
           " using 1:($5/$1) with linespoints lw 2 title 'micro-batches = pp + 1', " + one +
           " using 1:($5/$1) with linespoints lw 2 title '1 micro-batch (no overlap)', 0.9 dt 2 lc 'gray' title "
           "'90%'\n");
  plot("throughput_vs_micro_batches",
       "set title 'Throughput vs micro-batches in flight'\nset xlabel 'micro-batches'\nset ylabel 'output tokens/s'\n"
       "plot for [p in '2 4 8 16'] " +
           all + " using 2:($1==p+0 ? $3 : 1/0) with points pt 7 ps 1.5 title 'pp='.p\n");
  plot("latency_vs_pp",
       "set title 'Latency vs pipeline depth (micro-batches = pp)'\nset xlabel 'pp (stages)'\nset ylabel 'ms'\nset "
       "logscale x 2\nset logscale y\n"
       "plot " +
           eq + " using 1:10 with linespoints title 'TPOT p50', " + eq +
           " using 1:11 with linespoints title 'TPOT p90', " + eq + " using 1:12 with linespoints title 'TPOT p99', " +
           eq + " using 1:7 with linespoints dt 2 title 'TTFT p50', " + eq +
           " using 1:9 with linespoints dt 2 title 'TTFT p99'\n");
  for (const char* f : {"series-mb-pp.dat", "series-mb-pp-plus-1.dat", "series-mb-1.dat", "series-all.dat"})
    std::filesystem::remove(out_dir / f);
  for (const auto& m : runs) {
    auto png = out_dir /
               fmt::format("gantt-tp{}-pp{}-mb{}-batch{}.png", m.point.tp, m.point.pp, m.micro_batches, m.point.batch);
    gantt(m, out_dir / "gantt.dat", png);
    files.push_back(png);
  }
  std::filesystem::remove(out_dir / "gantt.dat");
  return files;
}

}  // namespace troupe
