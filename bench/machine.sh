# Sourced by the bench scripts: machine_line prints the CPU (model name, cpuid family and
# model, and the core generation they imply), core count and load average, so that
# every number names the CPU it was measured on. "AMD EPYC" alone does not: Zen 3, Zen 4 and
# Zen 5 machines all report it, and they differ (AVX-512 or not, vdpbf16ps at 2x or 0.5x the
# fp32 FMA's FLOPs); nor does "Intel(R) Xeon(R) Processor" (AMX or not).
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
  elif [[ $vendor == GenuineIntel && $family == 6 ]]; then
    # Xeon server cores: they too report only "Intel(R) Xeon(R) Processor" under a hypervisor.
    case $model in
      85) gen=": Skylake-SP or Cascade Lake" ;;
      106 | 108) gen=": Ice Lake-SP" ;;
      143) gen=": Sapphire Rapids" ;;
      207) gen=": Emerald Rapids" ;;
      173 | 174) gen=": Granite Rapids" ;;
    esac
  fi
  echo "family $family model $model$gen"
}
machine_line() {
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(cpu_generation)), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
