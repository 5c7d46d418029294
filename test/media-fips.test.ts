// FIPS installs: RHEL 8 wants fips=1 on the installer's own kernel line, so the
// remastered menus carry it next to inst.ks (and nowhere else).
import t from 'tap'
import { patchGrubCfg, patchIsolinuxCfg } from '../builder/media/bootcfg.js'

const VOL = 'RHEL-8-10-0-BaseOS-x86_64'
const isolinux = `default vesamenu.c32
timeout 600
label linux
  menu label ^Install Red Hat Enterprise Linux 8.10
  kernel vmlinuz
  append initrd=initrd.img inst.stage2=hd:LABEL=${VOL} quiet
label check
  menu label Test this ^media & install Red Hat Enterprise Linux 8.10
  menu default
  kernel vmlinuz
  append initrd=initrd.img inst.stage2=hd:LABEL=${VOL} rd.live.check quiet
label rescue
  kernel vmlinuz
  append initrd=initrd.img inst.stage2=hd:LABEL=${VOL} inst.rescue quiet
`
const grub = `set default="1"
set timeout=60
search --no-floppy --set=root -l '${VOL}'
menuentry 'Install Red Hat Enterprise Linux 8.10' --class fedora --class gnu-linux --class gnu --class os {
	linuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=${VOL} quiet
	initrdefi /images/pxeboot/initrd.img
}
menuentry 'Test this media & install Red Hat Enterprise Linux 8.10' --class fedora --class gnu-linux --class gnu --class os {
	linuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=${VOL} rd.live.check quiet
	initrdefi /images/pxeboot/initrd.img
}
`

t.test('fips=1 is added with inst.ks to the install entries, once, and not to rescue', async (t) => {
  const edit = { volumeId: VOL, ksPath: '/ks.cfg', extraArgs: ['fips=1'] }
  const iso = patchIsolinuxCfg(isolinux, edit)
  const appends = iso.text.split('\n').filter((l) => /^\s*append /.test(l))
  t.match(appends[0], /inst\.ks=hd:LABEL=RHEL-8-10-0-BaseOS-x86_64:\/ks\.cfg fips=1$/)
  t.match(appends[1], /rd\.live\.check quiet inst\.ks=\S+ fips=1$/)
  t.notMatch(appends[2], /fips=1|inst\.ks/, 'rescue is left alone')
  t.equal(iso.defaultEntry, 'linux', 'the unattended install is still the default')
  t.equal(patchIsolinuxCfg(iso.text, edit).text, iso.text, 'patching twice changes nothing')
  const g = patchGrubCfg(grub, edit)
  t.equal(g.text.match(/fips=1/g)?.length, 2)
  t.equal(g.defaultEntry, '0')
  t.equal(patchGrubCfg(g.text, edit).text, g.text, 'idempotent')
  t.notMatch(patchGrubCfg(grub, { volumeId: VOL, ksPath: '/ks.cfg' }).text, /fips=1/, 'no fips without asking')
})
