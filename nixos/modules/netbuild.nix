# Imported into every netbuild `nixos` class. It must stay a single self-contained file:
# `netbuild generate` copies it next to the generated class expressions.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.netbuild;
  disks = cfg.provisionDisks;

  flag = "${cfg.flagPrefix}.provision_disks";

  # The one parser of /proc/cmdline used by every unit here. Whole tokens only: a substring
  # match would let `x${flag}=true` or `${flag}=trueish` wipe disks. The last occurrence wins,
  # as with most kernel parameters. Quoted values with spaces are not supported.
  # NETBUILD_CMDLINE (a file) stands in for /proc/cmdline when testing the scripts off-target.
  cmdlineLib = pkgs.writeText "netbuild-cmdline.sh" ''
    # netbuild_cmdline_value KEY: prints the value of KEY=VALUE; status 1 when KEY is absent.
    netbuild_cmdline_value() {
      local key="$1" token value="" found=1
      local -a tokens=()
      read -r -a tokens < "''${NETBUILD_CMDLINE:-/proc/cmdline}" || true
      for token in "''${tokens[@]}"; do
        if [[ "$token" == "$key="* ]]; then
          value="''${token#"$key="}"
          found=0
        fi
      done
      [[ $found -eq 0 ]] && printf '%s\n' "$value"
      return $found
    }
  '';

  formatScript = pkgs.writeShellScript "netbuild-provision-format" ''
    set -euo pipefail
    ${disks.format}
  '';

  mountScript = pkgs.writeShellScript "netbuild-provision-mount" ''
    set -euo pipefail
    ${disks.mount}
  '';

  deviceUnits = map (dev: "${utils.escapeSystemdPath dev}.device") disks.devices;
in
{
  options.netbuild = {
    flagPrefix = lib.mkOption {
      type = lib.types.strMatching "[a-z][a-z0-9_]{0,31}";
      default = "homelab";
      description = ''
        Prefix of provisioning flags on the kernel command line. netbuild adds
        `<prefix>.provision_disks=true` only for hosts with `provision.disks: true`.
      '';
    };

    className = lib.mkOption {
      type = lib.types.str;
      default = "";
      description = "The netbuild class this system was built for (set by netbuild; written to /etc/netbuild-class).";
    };

    hostnameFromCmdline = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Set the hostname early in boot from `hostname=<name>` on the kernel command line, so
        that one image serves every host of a class.
      '';
    };

    provisionDisks = {
      enable = lib.mkEnableOption "disk provisioning at boot (format only when the kernel command line asks for it; always mount)";

      format = lib.mkOption {
        type = lib.types.lines;
        default = "";
        example = ''
          wipefs -a /dev/vda
          mkfs.ext4 -F -L data /dev/vda
        '';
        description = ''
          Script that partitions and formats the disks (mkfs commands, disko's format script, ...).
          It DESTROYS DATA and runs only when `<flagPrefix>.provision_disks=true` is on the
          kernel command line, never because something looks missing.
        '';
      };

      mount = lib.mkOption {
        type = lib.types.lines;
        default = "";
        example = ''
          mkdir -p /srv
          mount LABEL=data /srv
        '';
        description = "Script that mounts the provisioned disks. Runs on every boot, after `format` when that ran.";
      };

      devices = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "/dev/nvme0n1" ];
        description = "Block devices the scripts use; the service waits for them to appear.";
      };
    };
  };

  config = lib.mkMerge [
    {
      environment.etc."netbuild-class" = lib.mkIf (cfg.className != "") {
        text = cfg.className + "\n";
      };
    }

    (lib.mkIf cfg.hostnameFromCmdline {
      # Empty: no /etc/hostname, so the name set below is not overridden by a static one.
      networking.hostName = lib.mkDefault "";

      systemd.services.netbuild-hostname = {
        description = "Set the hostname from hostname= on the kernel command line";
        wantedBy = [ "sysinit.target" ];
        wants = [ "network-pre.target" ];
        before = [
          "sysinit.target"
          "network-pre.target"
          "systemd-hostnamed.service"
          "sshd.service"
          "shutdown.target"
        ];
        conflicts = [ "shutdown.target" ];
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = ''
          source ${cmdlineLib}
          if ! name=$(netbuild_cmdline_value hostname); then
            echo "no hostname= on the kernel command line; keeping hostname '$(< /proc/sys/kernel/hostname)'"
            exit 0
          fi
          # Same rule as networking.hostName (an RFC 1123 label): the value ends up in prompts,
          # logs and DHCP requests.
          if [[ ! "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]]; then
            echo "ignoring hostname=$name from the kernel command line: not a valid host name (letters, digits, inner hyphens, at most 63)" >&2
            exit 1
          fi
          printf '%s' "$name" > /proc/sys/kernel/hostname
          echo "hostname set to $name from the kernel command line"
        '';
      };
    })

    (lib.mkIf disks.enable {
      systemd.services.provision-disks = {
        description = "Provision disks (format only with ${flag}=true on the kernel command line) and mount them";
        wantedBy = [ "multi-user.target" ];
        # Before local-fs.target, so every ordinary service starts with the disks mounted.
        before = [
          "local-fs.target"
          "shutdown.target"
        ];
        conflicts = [ "shutdown.target" ];
        requires = deviceUnits;
        after = [
          "systemd-udev-trigger.service"
          "systemd-modules-load.service"
        ]
        ++ deviceUnits;
        unitConfig.DefaultDependencies = false;
        # A restart on `switch-to-configuration` would format mounted disks again whenever the
        # flag is still on the running kernel's command line.
        restartIfChanged = false;
        path = with pkgs; [
          coreutils
          util-linux
          lvm2
          e2fsprogs
          dosfstools
          gptfdisk
          parted
          gnugrep
          gnused
          kmod
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          StandardOutput = "journal+console";
          StandardError = "journal+console";
        };
        script = ''
          source ${cmdlineLib}
          flag=${lib.escapeShellArg flag}
          if value=$(netbuild_cmdline_value "$flag") && [[ "$value" == true ]]; then
            echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            echo "!!! provision-disks: $flag=true is on the kernel command line"
            echo "!!! provision-disks: WIPING AND FORMATTING DISKS NOW"
            echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
            ${formatScript}
            echo "provision-disks: format finished"
          else
            echo "provision-disks: $flag=true is not on the kernel command line; not formatting"
          fi
          ${mountScript}
          echo "provision-disks: mounted"
        '';
      };
    })
  ];
}
