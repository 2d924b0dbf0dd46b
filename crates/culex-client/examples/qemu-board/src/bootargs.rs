//! The board's name and its peer's, from the kernel command line that QEMU's
//! `-append` puts in the device tree (`/chosen/bootargs`):
//! `-append "name=green peer=blue"`.

/// What the board is told at boot.
#[derive(Debug, Clone, Copy)]
pub struct BootArgs {
    /// This board's name: its client id and the first level of its topic.
    pub name: &'static str,
    /// The board whose button lights this board's LED.
    pub peer: &'static str,
}

/// The longest name accepted: 23 bytes, the longest client id every MQTT
/// 3.1.1 broker must accept [MQTT-3.1.3-5].
pub const MAX_NAME: usize = 23;

/// Reads `name=` and `peer=` from the device tree's `/chosen/bootargs`.
pub fn parse(device_tree: &'static [u8]) -> Result<BootArgs, &'static str> {
    let line = chosen_bootargs(device_tree).ok_or("no kernel command line")?;
    let line = core::str::from_utf8(line).map_err(|_| "command line is not UTF-8")?;
    let (mut name, mut peer) = (None, None);
    for word in line.split_ascii_whitespace() {
        if let Some(value) = word.strip_prefix("name=") {
            name = Some(value);
        } else if let Some(value) = word.strip_prefix("peer=") {
            peer = Some(value);
        }
    }
    let name = name.ok_or("name= is missing")?;
    let peer = peer.ok_or("peer= is missing")?;
    if !valid_name(name) || !valid_name(peer) {
        return Err("names are 1 to 23 letters, digits, '-' or '_'");
    }
    Ok(BootArgs { name, peer })
}

/// A name that is a valid client id and a single topic level.
fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of `/chosen/bootargs` without its terminating NUL.
fn chosen_bootargs(fdt: &[u8]) -> Option<&[u8]> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    let structs = fdt.get(be32(fdt, 8)? as usize..)?;
    let strings = fdt.get(be32(fdt, 12)? as usize..)?;
    // Depth 1 is the root node; `/chosen` is one of its children.
    let mut depth = 0u32;
    let mut in_chosen = false;
    let mut at = 0usize;
    loop {
        let token = be32(structs, at)?;
        at = at.checked_add(4)?;
        match token {
            BEGIN_NODE => {
                let name = c_str(structs.get(at..)?)?;
                at = align4(at.checked_add(name.len() + 1)?);
                depth += 1;
                in_chosen = depth == 2 && name == b"chosen";
            }
            END_NODE => {
                depth = depth.checked_sub(1)?;
                in_chosen = false;
            }
            PROP => {
                let len = be32(structs, at)? as usize;
                let name_offset = be32(structs, at + 4)? as usize;
                let value = structs.get(at + 8..(at + 8).checked_add(len)?)?;
                at = align4(at + 8 + len);
                if in_chosen && c_str(strings.get(name_offset..)?)? == b"bootargs" {
                    return Some(c_str(value).unwrap_or(value));
                }
            }
            NOP => {}
            // FDT_END, or a token this reader does not know.
            _ => return None,
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

/// The bytes before the first NUL.
fn c_str(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().position(|&b| b == 0)?;
    bytes.get(..end)
}

fn align4(at: usize) -> usize {
    at.saturating_add(3) & !3
}
