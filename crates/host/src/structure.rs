//! What the dynamic loader will use, checked from the file before it sees it.
//!
//! `ld.so` trusts the dynamic segment: a damaged pointer, count or index in it makes
//! the loader (not the plugin) read or write wild memory, or trip an assertion,
//! before any check of ours could run afterwards. So the parts the loader walks are
//! checked here, through the same open file: loadable segments inside the file, the
//! dynamic segment and every table it names (strings, symbols, hash table,
//! relocations, init and fini arrays, version records) inside file-backed segments
//! and consistent with each other; every relocation of a known type, writing inside
//! a writable segment, naming an existing symbol; the exported descriptor symbol
//! present and pointing, through its relocations, at the `.tomada` bytes inspection
//! read and at code for its functions. Written by hand: `object` parses these
//! tables but does not check them against each other the way `ld.so` relies on.
//!
//! Damage in code or data the loader does not interpret (a flipped bit in `.text`)
//! is not detectable this way; that is what signatures are for.

use object::elf::{self, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{NativeEndian, ReadRef};

use crate::error::{Damage, Flaw, Table};

/// What the structural check found, for [`crate::Inspection`].
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// `DT_NEEDED` entries, in order.
    pub(crate) needed: Vec<String>,
    /// The executable `PT_LOAD` segments (`p_vaddr`, `p_memsz`; those with any
    /// memory), in file order: the library's code once loaded, moved by its load
    /// address (what an unload looks for; see `crate::unload::code`).
    pub(crate) code: Vec<(u64, u64)>,
}

struct Load {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

struct Image<'a> {
    loads: &'a [Load],
}

impl Image<'_> {
    /// The file offset of `[addr, addr + size)` if it is file-backed in one segment.
    fn file_offset(&self, addr: u64, size: u64) -> Option<u64> {
        let end = addr.checked_add(size)?;
        self.loads.iter().find(|l| l.vaddr <= addr && end <= l.vaddr + l.filesz).map(|l| l.offset + (addr - l.vaddr))
    }
    /// Whether `[addr, addr + size)` is mapped in one segment with all of `flags`.
    fn mapped(&self, addr: u64, size: u64, flags: u32) -> bool {
        let Some(end) = addr.checked_add(size) else { return false };
        self.loads.iter().any(|l| l.vaddr <= addr && end <= l.vaddr + l.memsz && l.flags & flags == flags)
    }
}

/// The most of anything counted: more is damage, not a plugin.
const MAX_TABLE: u64 = 64 << 20;

/// Checks a 64-bit ELF shared library of this host's machine (the caller checked
/// class, machine and type). `manifest` is the `.tomada` section header's
/// `(address, size)`. Errors are the reason, for [`crate::LoadError::Damaged`] (or
/// `Err(None)` where the descriptor symbol is missing).
pub(crate) fn check<'d, R: ReadRef<'d>>(
    header: &FileHeader64<NativeEndian>,
    data: R,
    len: u64,
    manifest: (u64, u64),
) -> Result<Facts, Option<Damage>> {
    let damaged = |flaw: Flaw| Some(Damage::Structure(flaw));
    let e = header.endian().map_err(|_| damaged(Flaw::ByteOrder))?;
    if header.e_phentsize(e) as usize != size_of::<elf::ProgramHeader64<NativeEndian>>() || header.e_phnum(e) > 512 {
        return Err(damaged(Flaw::ProgramHeaderTable));
    }
    let phdrs = header.program_headers(e, data).map_err(|_| damaged(Flaw::ProgramHeadersOutside))?;
    let mut loads = Vec::new();
    let mut dynamic = None;
    let mut within = Vec::new();
    let mut last_vaddr = 0;
    for ph in phdrs {
        let (offset, filesz, vaddr, memsz, align) =
            (ph.p_offset(e), ph.p_filesz(e), ph.p_vaddr(e), ph.p_memsz(e), ph.p_align(e));
        let inside = offset.checked_add(filesz).is_some_and(|end| end <= len);
        match ph.p_type(e).0 {
            t if t == elf::PT_LOAD.0 => {
                if !inside {
                    return Err(Some(Damage::Truncated { segment_end: offset.saturating_add(filesz), file_len: len }));
                }
                if filesz > memsz || vaddr.checked_add(memsz).is_none_or(|end| end > 1 << 47) || vaddr < last_vaddr {
                    return Err(damaged(Flaw::SegmentInconsistent));
                }
                if align > 1 && (!align.is_power_of_two() || offset % align != vaddr % align) {
                    return Err(damaged(Flaw::SegmentMisaligned));
                }
                last_vaddr = vaddr + memsz;
                loads.push(Load { vaddr, memsz, offset, filesz, flags: ph.p_flags(e).0 });
            }
            t if t == elf::PT_DYNAMIC.0 => {
                if dynamic.is_some() || !inside {
                    return Err(damaged(Flaw::DynamicSegmentDuplicated));
                }
                dynamic = Some((offset, filesz, vaddr));
            }
            t if t == elf::PT_INTERP.0 => return Err(damaged(Flaw::Interpreter)),
            t if t == elf::PT_TLS.0 || t == elf::PT_GNU_RELRO.0 => {
                if !inside || filesz > memsz {
                    return Err(damaged(Flaw::TlsOrRelroInconsistent));
                }
                within.push((vaddr, memsz, offset));
            }
            _ => {}
        }
    }
    let image = Image { loads: &loads };
    // Thread-local and read-only-after-relocation ranges: inside one writable loadable
    // segment, at the file offset it maps (ld.so `mprotect`s and copies them).
    for (vaddr, memsz, offset) in within {
        let fits = loads.iter().any(|l| {
            l.flags & elf::PF_W.0 != 0
                && l.vaddr <= vaddr
                && vaddr.saturating_add(memsz) <= l.vaddr + l.memsz
                && offset.checked_sub(l.offset) == Some(vaddr - l.vaddr)
        });
        if !fits {
            return Err(damaged(Flaw::TlsOrRelroOutside));
        }
    }
    let (dyn_off, dyn_size, dyn_vaddr) = dynamic.ok_or_else(|| damaged(Flaw::NoDynamicSegment))?;
    if image.file_offset(dyn_vaddr, dyn_size) != Some(dyn_off) {
        return Err(damaged(Flaw::DynamicSegmentMisplaced));
    }
    let entries: &[elf::Dyn64<NativeEndian>] =
        data.read_slice_at(dyn_off, (dyn_size / 16) as usize).map_err(|_| damaged(Flaw::DynamicSegmentUnreadable))?;
    let end = entries.iter().position(|d| d.d_tag(e).0 == elf::DT_NULL.0);
    let entries = &entries[..end.ok_or_else(|| damaged(Flaw::DynamicSegmentUnterminated))?];
    let get = |tag: elf::DynamicTag| entries.iter().find(|d| d.d_tag(e).0 == tag.0).map(|d| d.d_val(e));
    let table = |addr: u64, size: u64, table: Table| -> Result<u64, Option<Damage>> {
        if size > MAX_TABLE {
            return Err(Some(Damage::TableTooLarge { table, size }));
        }
        image.file_offset(addr, size).ok_or(Some(Damage::TableOutside { table }))
    };

    // Strings.
    let (strtab, strsz) = (get(elf::DT_STRTAB), get(elf::DT_STRSZ));
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else { return Err(damaged(Flaw::NoDynamicStrings)) };
    let strings = data
        .read_bytes_at(table(strtab, strsz, Table::DynamicStrings)?, strsz)
        .map_err(|_| Some(Damage::TableUnreadable { table: Table::DynamicStrings }))?;
    if strings.last() != Some(&0) {
        return Err(damaged(Flaw::DynamicStringsUnterminated));
    }
    let string = |offset: u64| -> Result<&[u8], Option<Damage>> {
        let s = strings.get(offset as usize..).ok_or_else(|| damaged(Flaw::NameOutside))?;
        // The table ends in a NUL, but an offset equal to its length leaves nothing.
        let end = s.iter().position(|&b| b == 0).ok_or_else(|| damaged(Flaw::NameOutside))?;
        Ok(&s[..end])
    };
    let mut facts = Facts::default();
    for d in entries {
        let tag = d.d_tag(e).0;
        if tag == elf::DT_NEEDED.0 || tag == elf::DT_SONAME.0 || tag == elf::DT_RUNPATH.0 || tag == elf::DT_RPATH.0 {
            let name = string(d.d_val(e))?;
            if tag == elf::DT_NEEDED.0 {
                facts.needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        if tag == elf::DT_TEXTREL.0 {
            return Err(damaged(Flaw::TextRelocations));
        }
    }

    // Symbols: their count from the section header of `.dynsym`, checked against the
    // hash table the loader uses.
    if get(elf::DT_SYMENT).is_some_and(|s| s != 24) || get(elf::DT_RELAENT).is_some_and(|s| s != 24) {
        return Err(damaged(Flaw::EntrySize));
    }
    let symtab = get(elf::DT_SYMTAB).ok_or_else(|| damaged(Flaw::NoDynamicSymbols))?;
    let sections = header.section_headers(e, data).map_err(|_| damaged(Flaw::SectionHeadersOutside))?;
    let dynsym = sections
        .iter()
        .find(|s| s.sh_type(e).0 == elf::SHT_DYNSYM.0)
        .ok_or_else(|| damaged(Flaw::NoDynamicSymbolSection))?;
    if dynsym.sh_addr(e) != symtab || dynsym.sh_entsize(e) != 24 {
        return Err(damaged(Flaw::DynamicSymbolSectionContradicts));
    }
    let nsyms = dynsym.sh_size(e) / 24;
    let symbols: &[elf::Sym64<NativeEndian>] = data
        .read_slice_at(table(symtab, nsyms * 24, Table::DynamicSymbols)?, nsyms as usize)
        .map_err(|_| Some(Damage::TableUnreadable { table: Table::DynamicSymbols }))?;
    if let Some(hash) = get(elf::DT_GNU_HASH) {
        check_gnu_hash(data, &image, e, hash, nsyms as u32)?;
    }
    if let Some(hash) = get(elf::DT_HASH) {
        let off = table(hash, 8, Table::Hash)?;
        let head: &elf::HashHeader<NativeEndian> =
            data.read_at(off).map_err(|_| Some(Damage::TableUnreadable { table: Table::Hash }))?;
        let (nbucket, nchain) = (head.bucket_count.get(e) as u64, head.chain_count.get(e) as u64);
        let words = table(hash, 8 + 4 * (nbucket + nchain), Table::Hash)?;
        let words: &[object::U32<NativeEndian>] = data
            .read_slice_at(words + 8, (nbucket + nchain) as usize)
            .map_err(|_| Some(Damage::TableUnreadable { table: Table::Hash }))?;
        if nchain != nsyms || words.iter().any(|w| w.get(e) as u64 >= nchain) {
            return Err(damaged(Flaw::HashNamesNothing));
        }
    }
    for sym in symbols {
        string(sym.st_name(e) as u64)?;
        let defined = sym.st_shndx(e).0 != elf::SHN_UNDEF.0 && sym.st_shndx(e).0 < elf::SHN_LORESERVE;
        let tls = sym.st_type().0 == elf::STT_TLS.0;
        if defined && !tls && sym.st_size(e) > 0 && !image.mapped(sym.st_value(e), sym.st_size(e), 0) {
            return Err(damaged(Flaw::SymbolOutside));
        }
    }

    // Relocations.
    let mut relocations: Vec<&[elf::Rela64<NativeEndian>]> = Vec::new();
    for (at, size, what) in
        [(elf::DT_RELA, elf::DT_RELASZ, Table::Relocations), (elf::DT_JMPREL, elf::DT_PLTRELSZ, Table::PltRelocations)]
    {
        match (get(at), get(size)) {
            (None, None) => {}
            (Some(at), Some(size)) if size % 24 == 0 => relocations.push(
                data.read_slice_at(table(at, size, what)?, (size / 24) as usize)
                    .map_err(|_| Some(Damage::TableUnreadable { table: what }))?,
            ),
            _ => return Err(Some(Damage::RelocationsMalformed { table: what })),
        }
    }
    if get(elf::DT_REL).is_some() || get(elf::DT_RELR).is_some() {
        return Err(damaged(Flaw::UncheckedRelocationFormat));
    }
    let (relative, allowed) = relocation_types(header.e_machine(e).0);
    // The exported descriptors, as the loader will find them: the first export's
    // (`TOMADA_DESCRIPTOR`) must be there; every other export's
    // (`TOMADA_DESCRIPTOR_<n>`) is checked the same way (below).
    let wanted = tomada::__private::descriptor::SYMBOL.as_bytes();
    let is_descriptor = |name: &[u8]| {
        name == wanted
            || name
                .strip_prefix(wanted)
                .and_then(|n| n.strip_prefix(b"_"))
                .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
    };
    let descriptors: Vec<&elf::Sym64<NativeEndian>> = symbols
        .iter()
        .filter(|s| {
            s.st_shndx(e).0 != elf::SHN_UNDEF.0
                && s.st_bind() != elf::STB_LOCAL
                && string(s.st_name(e) as u64).is_ok_and(is_descriptor)
        })
        .collect();
    // Where the checks below look a relative relocation up (the init and fini
    // arrays, the descriptors): only relocations writing there are remembered, not
    // the hundreds of others (vtables, statics), which are checked all the same.
    // Sorted and merged, so a relocation is placed by one binary search.
    let mut looked_up: Vec<(u64, u64)> = Vec::new();
    for (at, size) in [(elf::DT_INIT_ARRAY, elf::DT_INIT_ARRAYSZ), (elf::DT_FINI_ARRAY, elf::DT_FINI_ARRAYSZ)] {
        if let (Some(at), Some(size)) = (get(at), get(size)) {
            looked_up.push((at, at.saturating_add(size)));
        }
    }
    for d in &descriptors {
        let size = (d.st_size(e)).max(size_of::<tomada::__private::descriptor::Descriptor>() as u64);
        looked_up.push((d.st_value(e), d.st_value(e).saturating_add(size)));
    }
    looked_up.sort_unstable();
    looked_up.dedup_by(|next, kept| {
        // Overlapping or touching: one range.
        if next.0 <= kept.1 {
            kept.1 = kept.1.max(next.1);
            true
        } else {
            false
        }
    });
    let looked_up = looked_up.as_slice();
    // Vectors and a bitmap, not hash maps: hundreds of relocations, checked on every load.
    let mut relative_at: Vec<(u64, u64)> = Vec::new();
    // The few others (symbol lookups): where they write.
    let mut other_at: Vec<u64> = Vec::new();
    // Each place is written once: a bit per 8-byte slot of the writable segments, or,
    // where they are too large for that (more than 8 MiB), a sorted list.
    // The writable segments: where they start and end, and their first slot.
    let mut writable: Vec<(u64, u64, u64)> = Vec::with_capacity(loads.len());
    let mut slots = 0u64;
    for l in loads.iter().filter(|l| l.flags & elf::PF_W.0 != 0) {
        writable.push((l.vaddr, l.vaddr + l.memsz, slots));
        slots += l.memsz / 8 + 1;
    }
    // At least one word, so the one being marked (`current`) always has a place.
    let mut written = (slots <= 1 << 20).then(|| vec![0u64; slots.div_ceil(64).max(1) as usize]);
    let mut current = (0usize, 0u64);
    let mut targets: Vec<u64> = Vec::new();
    // Relocations come in runs into the same segment: the last one is tried first.
    let mut last = 0;
    let symbol_limit = nsyms.max(1);
    for table in &relocations {
        for rela in table.iter() {
            let (offset, info) = (rela.r_offset.get(e), rela.r_info.get(e));
            // ELF64: the type in the low word, the symbol in the high word.
            let (kind, sym) = (info as u32, info >> 32);
            // Most are relative: that type first.
            if Some(kind) != relative && !allowed.is_empty() && !allowed.contains(&kind) {
                return Err(Some(Damage::UnknownRelocation { kind }));
            }
            let inside = |&(start, end, _): &(u64, u64, u64)| start <= offset && offset < end && end - offset >= 8;
            let segment = if sym < symbol_limit && offset % 8 == 0 {
                match writable.get(last).filter(|w| inside(w)) {
                    Some(w) => Some(w),
                    None => writable.iter().position(inside).map(|i| {
                        last = i;
                        &writable[i]
                    }),
                }
            } else {
                None
            };
            let Some(&(start, _, base)) = segment else {
                return Err(damaged(Flaw::RelocationOutside));
            };
            match written.as_mut() {
                Some(bits) => {
                    let slot = (base + (offset - start) / 8) as usize;
                    let (word, bit) = (slot / 64, 1u64 << (slot % 64));
                    // Runs of relocations write neighbouring places: the word they mark
                    // stays in a register until a relocation marks another.
                    if word != current.0 {
                        bits[current.0] = current.1;
                        current = (word, bits[word]);
                    }
                    if current.1 & bit != 0 {
                        return Err(damaged(Flaw::RelocationTwice));
                    }
                    current.1 |= bit;
                }
                None => targets.push(offset),
            }
            if Some(kind) != relative {
                other_at.push(offset);
            } else if in_ranges(looked_up, offset) {
                relative_at.push((offset, rela.r_addend.get(e) as u64));
            }
        }
    }
    targets.sort_unstable();
    if targets.windows(2).any(|w| w[0] == w[1]) {
        return Err(damaged(Flaw::RelocationTwice));
    }
    // Linkers write relative relocations sorted by address; sort only if not.
    if !relative_at.is_sorted_by_key(|&(at, _)| at) {
        relative_at.sort_unstable();
    }
    let relative_target = |at: u64| relative_at.binary_search_by_key(&at, |&(o, _)| o).ok().map(|i| relative_at[i].1);
    let code = |addr: u64| image.mapped(addr, 1, elf::PF_X.0);
    for (at, size) in [(elf::DT_INIT_ARRAY, elf::DT_INIT_ARRAYSZ), (elf::DT_FINI_ARRAY, elf::DT_FINI_ARRAYSZ)] {
        let (Some(at), Some(size)) = (get(at), get(size)) else { continue };
        if size % 8 != 0 || !image.mapped(at, size, elf::PF_W.0) {
            return Err(damaged(Flaw::InitArray));
        }
        if relative.is_some() && (0..size / 8).any(|i| relative_target(at + 8 * i).is_none_or(|t| !code(t))) {
            return Err(damaged(Flaw::InitNotCode));
        }
    }
    for tag in [elf::DT_INIT, elf::DT_FINI] {
        if get(tag).is_some_and(|a| !code(a)) {
            return Err(damaged(Flaw::InitFunctionNotCode));
        }
    }
    let versions = check_versions(data, &image, e, &get, &string)?;
    if let Some(versym) = get(elf::DT_VERSYM) {
        // Each symbol's version index must name a version record: ld.so indexes an
        // array with it.
        let entries: &[object::U16<NativeEndian>] = data
            .read_slice_at(table(versym, nsyms * 2, Table::SymbolVersions)?, nsyms as usize)
            .map_err(|_| Some(Damage::TableUnreadable { table: Table::SymbolVersions }))?;
        if entries.iter().any(|v| !versions.contains(v.get(e) & 0x7fff)) {
            return Err(damaged(Flaw::UndefinedVersion));
        }
    }

    // The exported descriptors (found above).
    let mut first = false;
    for descriptor in descriptors {
        first |= string(descriptor.st_name(e) as u64).is_ok_and(|n| n == wanted);
        let at = descriptor.st_value(e);
        if descriptor.st_type().0 != elf::STT_OBJECT.0
            || (descriptor.st_size(e) as usize) < tomada::__private::descriptor::Descriptor::MIN_SIZE
            || !image.mapped(at, descriptor.st_size(e), 0)
        {
            return Err(damaged(Flaw::DescriptorNotWhole));
        }
        if relative.is_some() {
            let field = |offset: usize| relative_target(at + offset as u64);
            // Each export's manifest lies in the section (which of them is compared
            // byte for byte once loaded).
            let in_section = |target: u64| manifest.0 <= target && target < manifest.0.saturating_add(manifest.1);
            if !field(std::mem::offset_of!(tomada::__private::descriptor::Descriptor, manifest)).is_some_and(in_section)
                || image.file_offset(manifest.0, manifest.1).is_none()
            {
                return Err(damaged(Flaw::DescriptorElsewhere));
            }
            let mut functions = vec![
                std::mem::offset_of!(tomada::__private::descriptor::Descriptor, create),
                std::mem::offset_of!(tomada::__private::descriptor::Descriptor, destroy),
                std::mem::offset_of!(tomada::__private::descriptor::Descriptor, dispatch),
                std::mem::offset_of!(tomada::__private::descriptor::Descriptor, attach),
            ];
            if descriptor.st_size(e) as usize >= size_of::<tomada::__private::descriptor::Descriptor>() {
                functions.push(std::mem::offset_of!(tomada::__private::descriptor::Descriptor, create_with));
            }
            for offset in functions {
                // `create_with` may be `None`: null in the file, and no relocation
                // writes it.
                let optional = offset == std::mem::offset_of!(tomada::__private::descriptor::Descriptor, create_with);
                let at = at + offset as u64;
                let null = || {
                    !other_at.contains(&at)
                        && image
                            .file_offset(at, 8)
                            .and_then(|o| data.read_bytes_at(o, 8).ok())
                            .is_some_and(|b| b.iter().all(|&b| b == 0))
                };
                match relative_target(at) {
                    None if optional && null() => {}
                    Some(t) if code(t) => {}
                    _ => return Err(damaged(Flaw::DescriptorFunctionsNotCode)),
                }
            }
        }
    }
    if !first {
        return Err(None);
    }
    facts.code =
        loads.iter().filter(|l| l.flags & elf::PF_X.0 != 0 && l.memsz > 0).map(|l| (l.vaddr, l.memsz)).collect();
    Ok(facts)
}

/// Whether `at` lies in one of `ranges` (sorted, disjoint `[start, end)`): a scan of
/// the usual few (init and fini arrays, a descriptor or two), a binary search past
/// that. Called for every relative relocation.
#[inline(always)]
fn in_ranges(ranges: &[(u64, u64)], at: u64) -> bool {
    if ranges.len() <= 8 {
        return ranges.iter().any(|&(start, end)| start <= at && at < end);
    }
    let i = ranges.partition_point(|&(start, _)| start <= at);
    i > 0 && at < ranges[i - 1].1
}

/// The relative relocation type, and every type a plugin may use (empty: unchecked).
fn relocation_types(machine: u16) -> (Option<u32>, &'static [u32]) {
    match machine {
        m if m == elf::EM_X86_64.0 => (Some(8), &[0, 1, 6, 7, 8, 16, 17, 18, 37]),
        m if m == elf::EM_AARCH64.0 => (Some(1027), &[0, 257, 1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032]),
        _ => (None, &[]),
    }
}

fn check_gnu_hash<'d, R: ReadRef<'d>>(
    data: R,
    image: &Image<'_>,
    e: NativeEndian,
    at: u64,
    nsyms: u32,
) -> Result<(), Option<Damage>> {
    let bad = || Some(Damage::Structure(Flaw::GnuHash));
    let off = image.file_offset(at, 16).ok_or_else(bad)?;
    let head: &elf::GnuHashHeader<NativeEndian> = data.read_at(off).map_err(|_| bad())?;
    let (nbucket, symoffset, bloom) =
        (head.bucket_count.get(e) as u64, head.symbol_base.get(e), head.bloom_count.get(e) as u64);
    if symoffset > nsyms || nbucket > MAX_TABLE || bloom > MAX_TABLE || (bloom != 0 && !bloom.is_power_of_two()) {
        return Err(bad());
    }
    let words = nbucket + u64::from(nsyms - symoffset);
    let size = 16 + 8 * bloom + 4 * words;
    let off = image.file_offset(at, size).ok_or_else(bad)?;
    let words: &[object::U32<NativeEndian>] =
        data.read_slice_at(off + 16 + 8 * bloom, words as usize).map_err(|_| bad())?;
    let (buckets, chains) = words.split_at(nbucket as usize);
    for b in buckets {
        let mut i = b.get(e);
        if i == 0 {
            continue;
        }
        loop {
            if i < symoffset || i >= nsyms {
                return Err(bad());
            }
            if chains[(i - symoffset) as usize].get(e) & 1 == 1 {
                break;
            }
            i += 1;
        }
    }
    Ok(())
}

/// The version indices defined or needed: a bit per 15-bit index (4 KiB, no hashing).
struct VersionSet(Box<[u64; 512]>);

impl Default for VersionSet {
    fn default() -> Self {
        VersionSet(Box::new([0; 512]))
    }
}

impl VersionSet {
    fn insert(&mut self, index: u16) {
        let index = usize::from(index & 0x7fff);
        self.0[index / 64] |= 1 << (index % 64);
    }
    fn contains(&self, index: u16) -> bool {
        let index = usize::from(index & 0x7fff);
        self.0[index / 64] & (1 << (index % 64)) != 0
    }
}

fn check_versions<'d, 's, R: ReadRef<'d>>(
    data: R,
    image: &Image<'_>,
    e: NativeEndian,
    get: &dyn Fn(elf::DynamicTag) -> Option<u64>,
    string: &dyn Fn(u64) -> Result<&'s [u8], Option<Damage>>,
) -> Result<VersionSet, Option<Damage>> {
    let bad = || Some(Damage::Structure(Flaw::VersionRecords));
    let mut indices = VersionSet::default();
    indices.insert(0);
    indices.insert(1);
    for (at, count, need) in [(elf::DT_VERNEED, elf::DT_VERNEEDNUM, true), (elf::DT_VERDEF, elf::DT_VERDEFNUM, false)] {
        let Some(mut addr) = get(at) else { continue };
        let count = get(count).ok_or_else(bad)?;
        if count > 4096 {
            return Err(bad());
        }
        for i in 0..count {
            // Verneed and Verdef are both 16 bytes with the `next` offset at 12; their
            // auxiliary records 16 and 8 bytes, `next` at 12 and 4.
            let off = image.file_offset(addr, 16).ok_or_else(bad)?;
            let (aux_count, aux_first, next, file) = if need {
                let v: &elf::Verneed<NativeEndian> = data.read_at(off).map_err(|_| bad())?;
                if v.vn_version.get(e) != 1 {
                    return Err(bad());
                }
                (v.vn_cnt.get(e), v.vn_aux.get(e), v.vn_next.get(e), Some(v.vn_file.get(e)))
            } else {
                let v: &elf::Verdef<NativeEndian> = data.read_at(off).map_err(|_| bad())?;
                if v.vd_version.get(e) != 1 {
                    return Err(bad());
                }
                indices.insert(v.vd_ndx.get(e).0 & 0x7fff);
                (v.vd_cnt.get(e), v.vd_aux.get(e), v.vd_next.get(e), None)
            };
            if let Some(file) = file {
                string(file as u64)?;
            }
            let mut aux = addr.checked_add(aux_first as u64).ok_or_else(bad)?;
            for _ in 0..aux_count {
                let off = image.file_offset(aux, if need { 16 } else { 8 }).ok_or_else(bad)?;
                let (name, next) = if need {
                    let a: &elf::Vernaux<NativeEndian> = data.read_at(off).map_err(|_| bad())?;
                    indices.insert(a.vna_other.get(e).0 & 0x7fff);
                    (a.vna_name.get(e), a.vna_next.get(e))
                } else {
                    let a: &elf::Verdaux<NativeEndian> = data.read_at(off).map_err(|_| bad())?;
                    (a.vda_name.get(e), a.vda_next.get(e))
                };
                string(name as u64)?;
                aux = aux.checked_add(next as u64).ok_or_else(bad)?;
            }
            if i + 1 < count {
                if next == 0 {
                    return Err(bad());
                }
                addr = addr.checked_add(next as u64).ok_or_else(bad)?;
            }
        }
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::in_ranges;

    #[test]
    fn a_place_is_in_the_ranges_by_scan_and_by_search_alike() {
        // Few ranges are scanned, many searched: the same answers either way.
        for count in [3u64, 40] {
            let ranges: Vec<(u64, u64)> = (0..count).map(|i| (i * 100, i * 100 + 16)).collect();
            for at in 0..count * 100 + 50 {
                let expected = at % 100 < 16 && at < count * 100;
                assert_eq!(in_ranges(&ranges, at), expected, "{count} ranges, at {at}");
            }
        }
        assert!(!in_ranges(&[], 0));
    }
}
