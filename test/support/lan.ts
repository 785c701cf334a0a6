// A boot LAN's settings and hosts, shared by the tests of `netbuild dhcp` (addresses of the
// virtual LAN the LAN test builds: 192.168.77.0/24).
export const LAN_SITE = `url: http://192.168.77.1:8099
dhcp:
  interface: br0
  subnet: 192.168.77.0/24
  range: { start: 192.168.77.100, end: 192.168.77.200 }
  router: 192.168.77.254
  dns: [192.168.77.254, 192.168.77.253]
  leaseTime: 2h
  server: dhcp1
  tftpRoot: /srv/tftp
`;
export const LAN_HOSTS = `hosts:
  b2: { class: demo, macs: [52:54:00:00:00:02, 52:54:00:00:00:03], ip: 192.168.77.11 }
  a1: { class: demo, mac: 52:54:00:00:00:01, ip: 192.168.77.10 }
  c3: { class: demo, mac: 52:54:00:00:00:04, ip: 10.0.0.1 }
  d4: { class: demo, mac: 52:54:00:00:00:05, ip: "fd00::5" }
  e5: { class: demo, mac: 52:54:00:00:00:06 }
`;
