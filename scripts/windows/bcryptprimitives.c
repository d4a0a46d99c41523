/*
 * bcryptprimitives.dll for Wine 8, which has none: Rust's standard library (1.78 and later)
 * imports ProcessPrng from it to seed HashMap and friends, so without this DLL a Rust
 * program for Windows does not start under Wine 8. ProcessPrng is forwarded to
 * RtlGenRandom (SystemFunction036 in advapi32), which Wine has.
 *
 * Built by scripts/test-windows.sh with the mingw-w64 compiler and copied into the Wine
 * prefix's system32. Used only by the Windows lane; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
