# Navidrome music server on a netbooted VM. The root filesystem is a tmpfs, so the music and
# Navidrome's database live on the VM's disk (/dev/vda), mounted at /srv.
{ ... }:
{
  imports = [ ../common/vm.nix ];

  services.navidrome = {
    enable = true;
    openFirewall = true;
    settings = {
      Address = "0.0.0.0";
      Port = 4533;
      MusicFolder = "/srv/music";
      DataFolder = "/srv/navidrome";
    };
  };

  netbuild.provisionDisks = {
    enable = true;
    devices = [ "/dev/vda" ];
    # The provision id is recorded here (and sshd's host keys kept): on the disk, so a re-format
    # starts over.
    persistentDir = "/srv";
    # Without /srv mounted, Navidrome would start over with an empty database on the tmpfs.
    requiredBy = [ "navidrome.service" ];
    format = ''
      wipefs --all --force /dev/vda
      mkfs.ext4 -F -L srv /dev/vda
    '';
    mount = ''
      mkdir -p /srv
      mountpoint -q /srv || mount /dev/vda /srv
      mkdir -p /srv/music
    '';
  };

  system.stateVersion = "26.05";
}
