# Imported into every netbuild `nixos` class. `netbuild generate` copies it next to the generated
# class expressions, with the shell scripts it installs as they are (./netbuild-cmdline.sh,
# ./netbuild-hostname.sh, ./provision-disks.sh): the tests run those same files with real bash
# against real loop devices (test/nixos-scripts.test.ts). See README.md next to this file.
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
  sshd = config.services.openssh;

  flag = "${cfg.flagPrefix}.provision_disks";

  # The scripts, byte for byte as the tests run them.
  cmdlineLib = pkgs.writeText "netbuild-cmdline.sh" (builtins.readFile ./netbuild-cmdline.sh);
  hostnameScript = pkgs.writeText "netbuild-hostname.sh" (builtins.readFile ./netbuild-hostname.sh);
  provisionScript = pkgs.writeText "netbuild-provision-disks.sh" (builtins.readFile ./provision-disks.sh);

  formatScript = pkgs.writeShellScript "netbuild-provision-format" ''
    set -euo pipefail
    ${disks.format}
  '';

  mountScript = pkgs.writeShellScript "netbuild-provision-mount" ''
    set -euo pipefail
    ${disks.mount}
  '';

  deviceUnits = map (dev: "${utils.escapeSystemdPath dev}.device") disks.devices;

  # SSH host keys live on the provisioned storage, generated there on first boot.
  persistentKeys = disks.enable && disks.persistentDir != null && cfg.ssh.persistentHostKeys;
  hostKeyDir = "${toString disks.persistentDir}/.netbuild/ssh";

  # Per-host keys: one file per host, picked at boot by the hostname= the machine got.
  hostKeyFiles = pkgs.linkFarm "netbuild-host-authorized-keys" (
    lib.mapAttrsToList (host: keys: {
      name = host;
      path = pkgs.writeText "netbuild-authorized-keys-${host}" (lib.concatStringsSep "\n" keys + "\n");
    }) cfg.ssh.hostAuthorizedKeys
  );

  # The examples' placeholder: a well-formed ed25519 key of zero bytes, which no private key matches.
  placeholderKey = "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

  # Someone can log in: keys for every machine (netbuild's, or any user's), or keys for each host.
  userKeys = lib.any (u: u.openssh.authorizedKeys.keys != [ ] || u.openssh.authorizedKeys.keyFiles != [ ]) (lib.attrValues config.users.users);
  everyHostHasKeys = cfg.ssh.hostAuthorizedKeys != { } && cfg.ssh.hostsWithoutKeys == [ ];
in
{
  options.netbuild = {
    flagPrefix = lib.mkOption {
      type = lib.types.strMatching "[a-z][a-z0-9_]{0,31}";
      default = "homelab";
      description = ''
        Prefix of provisioning flags on the kernel command line. netbuild adds
        `<prefix>.provision_disks=true <prefix>.provision_id=<id>` only for hosts with
        `provision: { disks: true, id: <id> }`.
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
        Set the hostname early in boot from `hostname=<name>` on the kernel command line (the
        kernel's name and a static /etc/hostname, which DHCP clients do not replace), so that
        one image serves every host of a class.
      '';
    };

    ssh = {
      authorizedKeys = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        description = "Public keys that may log in as root on every machine of the class (netbuild sets them from `ssh.authorizedKeys` in the site and class files).";
      };

      hostAuthorizedKeys = lib.mkOption {
        type = lib.types.attrsOf (lib.types.listOf lib.types.str);
        default = { };
        description = ''
          More public keys for root, per host name (netbuild sets them from `ssh.authorizedKeys`
          in host files). Applied at boot, from the `hostname=` the machine boots with.
        '';
      };

      hostsWithoutKeys = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        internal = true;
        description = "Set by netbuild when the class has no keys for every machine: its hosts that have no keys of their own.";
      };

      allowNoKeys = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = ''
          Accept a class that runs sshd with no authorized key anywhere (a root password or
          another way in set up by the class itself). Without it, evaluation fails, since a
          netbooted machine with a locked root and no key cannot be reached.
        '';
      };

      persistentHostKeys = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Keep sshd's host keys in `<provisionDisks.persistentDir>/.netbuild/ssh`, generated
          there on the first boot and reused on every later one (the root file system is a
          tmpfs: keys made anywhere else change on every boot).
        '';
      };
    };

    provisionDisks = {
      enable = lib.mkEnableOption "disk provisioning at boot (format once per provisioning id when the kernel command line asks for it; always mount)";

      format = lib.mkOption {
        type = lib.types.lines;
        default = "";
        example = ''
          wipefs -a /dev/vda
          mkfs.ext4 -F -L data /dev/vda
        '';
        description = ''
          Script that partitions and formats the disks (mkfs commands, disko's format script, ...).
          It DESTROYS DATA and runs only when `<flagPrefix>.provision_disks=true` and a
          `<flagPrefix>.provision_id` other than the one recorded on the disks are on the kernel
          command line, never because something looks missing. Before it runs, nothing on the
          devices may be mounted or swapped on, and their volume groups are removed.
        '';
      };

      mount = lib.mkOption {
        type = lib.types.lines;
        default = "";
        example = ''
          mkdir -p /srv
          mountpoint -q /srv || mount LABEL=data /srv
        '';
        description = "Script that mounts the provisioned disks. Runs on every boot (and before formatting, to read the recorded id), so it must succeed when run twice.";
      };

      devices = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "/dev/nvme0n1" ];
        description = "Block devices the scripts use; the service waits for them to appear, and the safety checks cover them, their partitions and holders.";
      };

      persistentDir = lib.mkOption {
        type = lib.types.nullOr (lib.types.strMatching "/.+");
        default = null;
        example = "/srv";
        description = ''
          A folder on the provisioned storage once `mount` ran. The id of the last successful
          provision is recorded in `<persistentDir>/.netbuild/provision-id` (a re-format
          destroys it), and sshd's host keys go to `<persistentDir>/.netbuild/ssh`.
        '';
      };

      requiredBy = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "ganeti-noded.service" ];
        description = ''
          Units that must not start without the provisioned storage: they require
          provision-disks.service and start after it (so a failed provision cannot let them
          write into the tmpfs root).
        '';
      };
    };
  };

  config = lib.mkMerge [
    {
      environment.etc."netbuild-class" = lib.mkIf (cfg.className != "") {
        text = cfg.className + "\n";
      };

      assertions = [
        {
          assertion = !sshd.enable || cfg.ssh.allowNoKeys || cfg.ssh.authorizedKeys != [ ] || userKeys || everyHostHasKeys;
          message = ''
            netbuild class ${cfg.className}: sshd runs, but nobody could log in: root is locked and no public key is set.
            Add `ssh: { authorizedKeys: [ "ssh-ed25519 AAAA… you@laptop" ] }` to netbuild.yaml (every NixOS machine), to the class file, or to each host file${
              lib.optionalString (cfg.ssh.hostsWithoutKeys != [ ] && cfg.ssh.hostAuthorizedKeys != { }) " (these hosts have none: ${lib.concatStringsSep ", " cfg.ssh.hostsWithoutKeys})"
            }; or set users.users.<name>.openssh.authorizedKeys.keys, or netbuild.ssh.allowNoKeys = true if the class has another way in.
          '';
        }
        {
          assertion = !disks.enable || disks.persistentDir != null;
          message = "netbuild class ${cfg.className}: netbuild.provisionDisks needs persistentDir, a folder your mount script mounts from the provisioned disks (e.g. \"/srv\"): the id of the last provision is recorded there, so that a reboot does not format again.";
        }
        {
          assertion = !disks.enable || disks.devices != [ ];
          message = "netbuild class ${cfg.className}: netbuild.provisionDisks needs devices, the disks the format script uses (the safety checks before a wipe cover them).";
        }
      ];

      warnings =
        lib.optional (lib.any (k: lib.hasInfix placeholderKey k) (cfg.ssh.authorizedKeys ++ lib.concatLists (lib.attrValues cfg.ssh.hostAuthorizedKeys)))
          "netbuild class ${cfg.className}: ssh.authorizedKeys still holds the example's placeholder key (AAAAC3…AAAA REPLACE-ME): nobody can log in with it. Replace it with your public key."
        ++ lib.optional (sshd.enable && !persistentKeys) ''
        netbuild class ${cfg.className}: sshd's host keys are made anew on every boot (the root file system is a tmpfs${
          lib.optionalString (!disks.enable) ", and the class provisions no storage (netbuild.provisionDisks)"
        }), so clients see a changed host key after each reboot. Provision storage and set netbuild.provisionDisks.persistentDir, or see nixos/modules/README.md ("Host keys") for pre-seeding keys.
      '';

      users.users.root.openssh.authorizedKeys.keys = cfg.ssh.authorizedKeys;
    }

    (lib.mkIf (sshd.enable && cfg.ssh.hostAuthorizedKeys != { }) {
      # A file sshd reads besides /etc/ssh/authorized_keys.d/%u (a tmpfs: nothing is kept).
      services.openssh.authorizedKeysFiles = [ "/run/netbuild/authorized_keys.d/%u" ];
      systemd.services.netbuild-authorized-keys = {
        description = "Root's SSH keys for this host (from its hostname=)";
        wantedBy = [ "multi-user.target" ];
        after = [ "netbuild-hostname.service" ];
        before = [
          "sshd.service"
          "sshd.socket"
        ];
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        path = [ pkgs.coreutils ];
        script = ''
          name=$(< /proc/sys/kernel/hostname)
          if [[ -f ${hostKeyFiles}/$name ]]; then
            install -D -m 0644 ${hostKeyFiles}/"$name" /run/netbuild/authorized_keys.d/root
            echo "netbuild: root's SSH keys for $name installed"
          else
            echo "netbuild: no SSH keys of its own for $name"
          fi
        '';
      };
    })

    (lib.mkIf cfg.hostnameFromCmdline {
      systemd.services.netbuild-hostname = {
        description = "Set the hostname from hostname= on the kernel command line";
        wantedBy = [ "sysinit.target" ];
        wants = [ "network-pre.target" ];
        before = [
          "sysinit.target"
          "network-pre.target"
          "systemd-hostnamed.service"
          "sshd.service"
          "sshd.socket"
          "shutdown.target"
        ];
        conflicts = [ "shutdown.target" ];
        unitConfig.DefaultDependencies = false;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        path = [ pkgs.coreutils ];
        environment.NETBUILD_CMDLINE_LIB = "${cmdlineLib}";
        script = "exec ${pkgs.bash}/bin/bash ${hostnameScript}";
      };
    })

    (lib.mkIf disks.enable {
      systemd.services.provision-disks = {
        description = "Provision disks (format once per ${flag}=true with a new id) and mount them";
        wantedBy = [ "multi-user.target" ];
        requiredBy = disks.requiredBy;
        # Before local-fs.target, so every ordinary service starts with the disks mounted.
        before = [
          "local-fs.target"
          "shutdown.target"
        ]
        ++ disks.requiredBy;
        conflicts = [ "shutdown.target" ];
        requires = deviceUnits;
        after = [
          "systemd-udev-trigger.service"
          "systemd-modules-load.service"
        ]
        ++ deviceUnits;
        unitConfig.DefaultDependencies = false;
        # Not restarted by switch-to-configuration (a restart in the same boot never formats
        # anyway: the script keeps a per-boot marker in /run/netbuild).
        restartIfChanged = false;
        path = with pkgs; [
          bash
          coreutils
          util-linux
          lvm2
          e2fsprogs
          dosfstools
          gptfdisk
          parted
          gnugrep
          gnused
          gawk
          kmod
          config.systemd.package
        ];
        environment = {
          NETBUILD_FLAG_PREFIX = cfg.flagPrefix;
          NETBUILD_DEVICES = lib.concatStringsSep " " disks.devices;
          NETBUILD_FORMAT = "${formatScript}";
          NETBUILD_MOUNT = "${mountScript}";
          NETBUILD_PERSISTENT_DIR = toString disks.persistentDir;
          NETBUILD_RUN_DIR = "/run/netbuild";
          NETBUILD_CMDLINE_LIB = "${cmdlineLib}";
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          StandardOutput = "journal+console";
          StandardError = "journal+console";
        };
        script = "exec ${pkgs.bash}/bin/bash ${provisionScript}";
      };
    })

    (lib.mkIf (sshd.enable && persistentKeys) {
      services.openssh.hostKeys = [
        {
          type = "ed25519";
          path = "${hostKeyDir}/ssh_host_ed25519_key";
        }
        {
          type = "rsa";
          bits = 4096;
          path = "${hostKeyDir}/ssh_host_rsa_key";
        }
      ];
      # The keys are made (by sshd's own key generation) only once the storage is there. A failed
      # provision still leaves a way in: sshd starts, with keys made in the tmpfs for this boot
      # (clients then see a changed key, which says that something is wrong).
      systemd.services.netbuild-ssh-host-keys = {
        description = "SSH host keys on the provisioned storage";
        wantedBy = [ "multi-user.target" ];
        wants = [ "provision-disks.service" ];
        after = [ "provision-disks.service" ];
        before = [
          "sshd.service"
          "sshd.socket"
          "sshd-keygen.service"
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        path = [
          pkgs.coreutils
          pkgs.util-linux
          sshd.package
        ];
        script = ''
          dir=${lib.escapeShellArg hostKeyDir}
          if ! mountpoint -q ${lib.escapeShellArg (toString disks.persistentDir)} && [[ "$(findmnt -n -o FSTYPE --target ${lib.escapeShellArg (toString disks.persistentDir)})" == tmpfs ]]; then
            echo "netbuild: ${toString disks.persistentDir} is not on the provisioned storage: sshd's host keys for this boot are temporary" >&2
          fi
          mkdir -p -m 0700 "$dir"
          make() {
            local key="$dir/ssh_host_$1_key"
            [[ -s "$key" ]] && return 0
            rm -f "$key" "$key.pub"
            ssh-keygen -q -t "$@" -N "" -C "" -f "$key"
            echo "netbuild: made the SSH host key $key"
          }
          make ed25519
          make rsa -b 4096
        '';
      };
      # sshd.service exists only without socket activation (startWhenNeeded: sshd.socket, per-connection units).
      systemd.services.sshd = lib.mkIf (!sshd.startWhenNeeded) {
        wants = [ "netbuild-ssh-host-keys.service" ];
        after = [ "netbuild-ssh-host-keys.service" ];
      };
      systemd.sockets.sshd = lib.mkIf sshd.startWhenNeeded {
        wants = [ "netbuild-ssh-host-keys.service" ];
        after = [ "netbuild-ssh-host-keys.service" ];
      };
    })
  ];
}
