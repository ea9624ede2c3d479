/* A stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine 8.
 *
 * Rust's std (1.78 and later) takes its random bytes (HashMap seeds) from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8 does not ship; without it the program does not start.
 * Placed next to the .exe, this DLL answers ProcessPrng from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Test machinery only: never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
