//! Reading one registry value (RegGetValueW); a missing value is `None`. Windows only.

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{
    HKEY, RRF_RT_REG_BINARY, RRF_RT_REG_DWORD, RRF_RT_REG_SZ, RegGetValueW,
};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn raw(root: HKEY, key: &str, value: &str, flags: u32) -> Option<Vec<u8>> {
    let (key, value) = (wide(key), wide(value));
    let get = |data: *mut core::ffi::c_void, size: &mut u32| {
        // SAFETY: the names are NUL-terminated; `data` is null (asking for the size) or
        // holds `size` bytes.
        unsafe {
            RegGetValueW(
                root,
                key.as_ptr(),
                value.as_ptr(),
                flags,
                std::ptr::null_mut(),
                data,
                size,
            )
        }
    };
    let mut size: u32 = 0;
    if get(std::ptr::null_mut(), &mut size) != ERROR_SUCCESS {
        return None;
    }
    let mut buf = vec![0u8; size as usize];
    if get(buf.as_mut_ptr().cast(), &mut size) != ERROR_SUCCESS {
        return None;
    }
    buf.truncate(size as usize);
    Some(buf)
}

pub(crate) fn dword(root: HKEY, key: &str, value: &str) -> Option<u32> {
    let b = raw(root, key, value, RRF_RT_REG_DWORD)?;
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

pub(crate) fn string(root: HKEY, key: &str, value: &str) -> Option<String> {
    let b = raw(root, key, value, RRF_RT_REG_SZ)?;
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    Some(String::from_utf16_lossy(&units))
}

pub(crate) fn binary(root: HKEY, key: &str, value: &str) -> Option<Vec<u8>> {
    raw(root, key, value, RRF_RT_REG_BINARY)
}
