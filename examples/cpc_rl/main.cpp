// cpc-rl: A2C with and without the CPC auxiliary loss on the cpc::rl environments (issue 17,
// paper section 3.4 and Figure 6). `cpc-rl demo` trains both variants on every environment with
// the same budget of environment steps for several seeds, writes the learning curves as CSV,
// draws mean return against environment steps with a band over seeds (gnuplot,
// scripts/plots/rl_returns.gp) and prints a table of final and area-under-curve returns.
#include <CLI/CLI.hpp>

#include "../common/cli_checks.hpp"

#include <cpc/core/allocator.hpp>
#include <cpc/core/threads.hpp>
#include <cpc/rl/agent.hpp>
#include <cpc/rl/env/cue_corridor.hpp>
#include <cpc/rl/env/memory_maze.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace cpc::rl;

namespace {

struct settings {
  std::string out = "runs/rl";
  std::vector<std::string> envs{"cue_corridor", "memory_maze"};
  std::size_t steps = 1000000;  // environment steps per run
  std::size_t seeds = 5;
  std::size_t parallel_envs = 16;
  std::size_t rollout = 20;
  double cpc_weight = 0.02;
  std::size_t cpc_steps = 19;
  std::size_t cpc_negatives = 16;
  double lr = 7e-4;
  double entropy = 0.01;
  std::size_t points = 40;  // curve points per run
  std::size_t jobs = 0;     // concurrent runs (0: hardware threads)
  std::string plot_script = CPC_RL_PLOT_SCRIPT;
};

/// One training run's learning curve: mean return of the episodes that ended in each of `points`
/// equal slices of the step budget (the previous value when none ended).
struct run_result {
  std::string env, variant;
  std::size_t seed = 0;
  std::vector<double> curve;
  double final_return = 0;  // mean return of the episodes ending in the last 10 % of the budget
  double auc = 0;           // mean of the curve (area under it divided by the budget)
  double seconds = 0;
};

template <class Env>
run_result train_one(const settings& s, const std::string& env_name, bool with_cpc, std::size_t seed) {
  const auto t0 = std::chrono::steady_clock::now();
  vector_env<Env> envs(s.parallel_envs, 1000 + seed);  // same environments for both variants
  a2c_options opt{.rollout = s.rollout,
                  .loss = {.value_weight = 0.5, .entropy_weight = s.entropy},
                  .learning_rate = s.lr,
                  .cpc_weight = with_cpc ? s.cpc_weight : 0.0,
                  .cpc_steps = s.cpc_steps,
                  .cpc_negatives = s.cpc_negatives};
  a2c_learner<Env> learner(envs, {}, opt, seed);
  run_result r{env_name, with_cpc ? "a2c+cpc" : "a2c", seed, {}, 0, 0, 0};
  std::vector<double> sum(s.points, 0), count(s.points, 0);
  double final_sum = 0, final_count = 0;
  while (learner.env_steps() < s.steps) {
    learner.update();
    const double at = static_cast<double>(learner.env_steps()) / static_cast<double>(s.steps);
    const auto bin =
        std::min<std::size_t>(s.points - 1, static_cast<std::size_t>(at * s.points * (1 - 1e-12)));
    for (double ret : envs.take_finished()) {
      sum[bin] += ret;
      count[bin] += 1;
      if (at > 0.9) {
        final_sum += ret;
        final_count += 1;
      }
    }
  }
  double last = 0;
  for (std::size_t b = 0; b < s.points; ++b) {
    if (count[b] > 0) last = sum[b] / count[b];
    r.curve.push_back(last);
    r.auc += last / static_cast<double>(s.points);
  }
  r.final_return = final_count > 0 ? final_sum / final_count : last;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

run_result train_any(const settings& s, const std::string& env, bool with_cpc, std::size_t seed) {
  if (env == "cue_corridor") return train_one<cue_corridor>(s, env, with_cpc, seed);
  if (env == "memory_maze") return train_one<memory_maze>(s, env, with_cpc, seed);
  throw cpc::config_error("cpc-rl: expected an environment among cue_corridor, memory_maze, got '" + env +
                          "'");
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x / static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - m) * (x - m) / static_cast<double>(v.size() > 1 ? v.size() - 1 : 1);
  return {m, std::sqrt(var)};
}

int demo(const settings& s) {
  fs::create_directories(s.out);
  struct job {
    std::string env;
    bool cpc;
    std::size_t seed;
  };
  std::vector<job> jobs;
  for (const auto& e : s.envs)
    for (std::size_t seed = 0; seed < s.seeds; ++seed)
      for (bool cpc : {false, true}) jobs.push_back({e, cpc, seed});
  std::vector<run_result> results(jobs.size());
  std::atomic<std::size_t> next{0};
  std::mutex print;
  const std::size_t workers = std::max<std::size_t>(
      1, std::min(jobs.size(), s.jobs > 0 ? s.jobs : std::thread::hardware_concurrency()));
  cpc::set_num_threads(1);  // one thread per run; runs in parallel
  std::printf(
      "cpc-rl demo: %zu runs (%zu environments x {a2c, a2c+cpc} x %zu seeds), %zu environment steps "
      "each, %zu at a time\n",
      jobs.size(), s.envs.size(), s.seeds, s.steps, workers);
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (std::size_t i; (i = next++) < jobs.size();) {
        results[i] = train_any(s, jobs[i].env, jobs[i].cpc, jobs[i].seed);
        std::lock_guard<std::mutex> lock(print);
        std::printf("  %-12s %-8s seed %zu: final %.3f, AUC %.3f (%.0f s)\n", results[i].env.c_str(),
                    results[i].variant.c_str(), results[i].seed, results[i].final_return, results[i].auc,
                    results[i].seconds);
        std::fflush(stdout);
      }
    });
  for (auto& t : pool) t.join();

  // Curves: one row per (run, point); and per environment the mean and band over seeds.
  {
    std::ofstream f(fs::path(s.out) / "curves.csv");
    f << "env,variant,seed,env_steps,mean_return\n";
    for (const auto& r : results)
      for (std::size_t b = 0; b < r.curve.size(); ++b)
        f << r.env << ',' << r.variant << ',' << r.seed << ',' << (b + 1) * s.steps / s.points << ','
          << r.curve[b] << '\n';
  }
  std::printf("\n%-13s %-8s %5s %18s %18s\n", "environment", "variant", "seeds", "final return",
              "AUC return");
  std::ofstream summary(fs::path(s.out) / "summary.csv");
  summary << "env,variant,seeds,final_mean,final_std,auc_mean,auc_std\n";
  for (const auto& e : s.envs) {
    std::ofstream f(fs::path(s.out) / (e + "_mean.csv"));
    f << "env_steps,a2c_mean,a2c_std,cpc_mean,cpc_std\n";
    std::vector<std::vector<const run_result*>> by(2);
    for (const auto& r : results)
      if (r.env == e) by[r.variant == "a2c" ? 0 : 1].push_back(&r);
    for (std::size_t b = 0; b < s.points; ++b) {
      f << (b + 1) * s.steps / s.points;
      for (const auto& runs : by) {
        std::vector<double> v;
        for (const auto* r : runs) v.push_back(r->curve[b]);
        const auto [m, sd] = mean_std(v);
        f << ',' << m << ',' << sd;
      }
      f << '\n';
    }
    for (std::size_t k = 0; k < 2; ++k) {
      std::vector<double> fin, auc;
      for (const auto* r : by[k]) {
        fin.push_back(r->final_return);
        auc.push_back(r->auc);
      }
      const auto fm = mean_std(fin), am = mean_std(auc);
      const char* name = k == 0 ? "a2c" : "a2c+cpc";
      std::printf("%-13s %-8s %5zu %9.3f +- %5.3f %9.3f +- %5.3f\n", e.c_str(), name, fin.size(), fm.first,
                  fm.second, am.first, am.second);
      summary << e << ',' << name << ',' << fin.size() << ',' << fm.first << ',' << fm.second << ','
              << am.first << ',' << am.second << '\n';
    }
  }
  summary.close();
  std::printf(
      "(mean +- standard deviation over seeds; final: episodes ending in the last 10%% of the budget; "
      "AUC: mean of the curve)\n");
  std::printf("curves: %s, %s\n", (fs::path(s.out) / "curves.csv").string().c_str(),
              (fs::path(s.out) / "summary.csv").string().c_str());
  // The picture (paper Figure 6 form), when gnuplot is there.
  std::string envs_arg;
  for (const auto& e : s.envs) envs_arg += (envs_arg.empty() ? "" : " ") + e;
  const std::string cmd =
      "gnuplot -e \"dir='" + s.out + "'; envs='" + envs_arg + "'\" '" + s.plot_script + "'";
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    std::printf("plot: gnuplot not found (apt install gnuplot-nox); run: %s\n", cmd.c_str());
  } else if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "cpc-rl: gnuplot failed: %s\n", cmd.c_str());
    return 1;
  } else {
    std::printf("plot: %s\n", (fs::path(s.out) / "returns.png").string().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cpc::configure_allocator();
  settings s;
  CLI::App app{"A2C with and without CPC as an auxiliary loss (paper section 3.4)"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  auto* demo_cmd =
      app.add_subcommand("demo", "train both variants on every environment, write curves and a table");
  const CLI::Validator whole = cpc_examples::whole_number(1);
  const auto real = cpc_examples::positive_number;
  demo_cmd->add_option("--out", s.out, "output directory (made if missing)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  demo_cmd->add_option("--envs", s.envs, "environments (cue_corridor, memory_maze)");
  demo_cmd->add_option("--steps", s.steps, "environment steps per run, >= parallel-envs x rollout")
      ->check(whole);
  demo_cmd->add_option("--seeds", s.seeds, "seeds per variant and environment")->check(whole);
  demo_cmd->add_option("--parallel-envs", s.parallel_envs, "environments stepped as one batch")->check(whole);
  demo_cmd->add_option("--rollout", s.rollout, "steps per environment between updates")
      ->check(CLI::Range(2, 100000));
  demo_cmd->add_option("--cpc-weight", s.cpc_weight, "weight of the CPC auxiliary loss")->check(real(false));
  demo_cmd->add_option("--cpc-steps", s.cpc_steps, "prediction steps K (at most rollout - 1)")->check(whole);
  demo_cmd->add_option("--cpc-negatives", s.cpc_negatives, "negatives per prediction")->check(whole);
  demo_cmd->add_option("--lr", s.lr, "RMSprop learning rate")->check(real(false));
  demo_cmd->add_option("--entropy", s.entropy, "entropy bonus weight")->check(real(true));
  demo_cmd->add_option("--points", s.points, "curve points per run (at most the run's updates)")
      ->check(whole);
  demo_cmd->add_option("--jobs", s.jobs, "runs trained at once (0: one per hardware thread)");
  demo_cmd->add_option("--plot-script", s.plot_script, "gnuplot script drawing <out>/returns.png");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "cpc-rl: %s (--help lists the options)\n", e.what());
    return 2;
  }
  // Every option against the others, and the output folder, before any training (exit status 2).
  try {
    const auto need = [](bool ok, const std::string& what) {
      if (!ok) throw cpc::config_error(what);
    };
    for (const auto& e : s.envs)
      need(e == "cue_corridor" || e == "memory_maze",
           "--envs: expected environments among cue_corridor, memory_maze, got '" + e + "'");
    need(s.cpc_steps < s.rollout, "--cpc-steps: expected at most --rollout - 1 = " +
                                      std::to_string(s.rollout - 1) + ", got " + std::to_string(s.cpc_steps));
    const std::size_t per_update = s.parallel_envs * s.rollout;
    need(s.steps >= per_update, "--steps: expected at least one update's --parallel-envs x --rollout = " +
                                    std::to_string(per_update) + " environment steps, got " +
                                    std::to_string(s.steps));
    need(s.points <= s.steps / per_update, "--points: expected at most the run's " +
                                               std::to_string(s.steps / per_update) + " updates, got " +
                                               std::to_string(s.points));
    std::error_code ec;
    std::filesystem::create_directories(s.out, ec);
    need(!ec && std::filesystem::is_directory(s.out),
         "--out: cannot make the folder '" + s.out + "'" +
             (ec ? " (" + ec.message() + ")" : " (a file is there)"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpc-rl: %s\n", e.what());
    return 2;
  }
  try {
    return demo(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpc-rl: %s\n", e.what());
    return 1;
  }
}
