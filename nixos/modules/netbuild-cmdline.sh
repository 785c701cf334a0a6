# netbuild's one parser of the kernel command line, shared by every netbuild unit
# (provision-disks.sh, netbuild-hostname.sh). A library: source it, do not run it.
#
#   netbuild_cmdline_value KEY   prints the value of KEY=VALUE and returns 0;
#                                returns 1 (printing nothing) when KEY is absent.
#
# The safety rule (provisioning wipes disks, so it must never fire by accident):
# - whole whitespace-separated tokens only: `xhomelab.provision_disks=true` is not the key
#   `homelab.provision_disks`, and a quoted `"homelab.provision_disks=true"` is not either;
# - the value is returned as written: callers compare it exactly, so `=truex`, `=TRUE` or
#   `=true,` are not `true`;
# - the last occurrence of the key wins, as with most kernel parameters;
# - quoted values with spaces are not supported (netbuild never writes them).
# A missing or unreadable command line file counts as "every key absent".
#
# Environment: NETBUILD_CMDLINE, a file that stands in for /proc/cmdline (tests, off-target runs).

netbuild_cmdline_value() {
  local key="$1" token value="" found=1
  local IFS=$' \t\n'
  local -a tokens=()
  read -r -a tokens < "${NETBUILD_CMDLINE:-/proc/cmdline}" || true
  for token in "${tokens[@]}"; do
    if [[ "$token" == "$key="* ]]; then
      value="${token#"$key="}"
      found=0
    fi
  done
  [[ $found -eq 0 ]] && printf '%s\n' "$value"
  return $found
}
