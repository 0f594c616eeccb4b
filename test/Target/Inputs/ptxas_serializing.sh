#!/bin/sh
# A stand-in ptxas for ptxas-serialized.test: runs the real one ($REAL_PTXAS)
# and then reports, as ptxas 13.0 does when it gives up on a kernel's wgmma
# pipeline, that it serialized the wgmma instructions.
"$REAL_PTXAS" "$@"
rc=$?
echo "ptxas info    : (C7513) Potential Performance Loss: wgmma.mma_async instructions are serialized due to non wgmma instructions defining input registers of a wgmma between start and end of the pipeline stage in the function 'kernel'" >&2
exit $rc
