/*
 * A Wine workaround for CI, never shipped: Rust's standard library (1.78 and later)
 * takes its random numbers from ProcessPrng in bcryptprimitives.dll, which Wine 8
 * (Debian 12's) does not have, so no Rust program starts under it. This DLL provides
 * ProcessPrng on top of RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * .ci/windows builds it with mingw and puts it in the Wine prefix's system32.
 * Real Windows (10 and later) has its own bcryptprimitives.dll: do not copy this there.
 */
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
