# Sourced by the bench scripts: machine_line prints the CPU (model name, cpuid family and
# model, and for AMD the core generation they imply), core count and load average, so that
# every number names the CPU it was measured on. "AMD EPYC" alone does not: Zen 3, Zen 4 and
# Zen 5 machines all report it, and they differ (AVX-512 or not, vdpbf16ps at 2x or 0.5x the
# fp32 FMA's FLOPs).
cpu_generation() {
  local vendor family model
  vendor=$(awk -F': *' '/^vendor_id/ {print $2; exit}' /proc/cpuinfo)
  family=$(awk -F': *' '/^cpu family/ {print $2; exit}' /proc/cpuinfo)
  model=$(awk -F': *' '/^model[ \t]*:/ {print $2; exit}' /proc/cpuinfo)
  local gen=""
  if [[ $vendor == AuthenticAMD ]]; then
    case $family in
      25) if grep -qw avx512f /proc/cpuinfo; then gen=": Zen 4"; else gen=": Zen 3"; fi ;;
      26) gen=": Zen 5" ;;
    esac
  fi
  echo "family $family model $model$gen"
}
machine_line() {
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(cpu_generation)), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
