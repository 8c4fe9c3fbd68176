"""The real Lambda runtime, without Docker: `casewatch invoke FUNCTION -e EVENT --runtime-emulator`.

A function runs from its synthesized code asset and layer inside the Lambda Runtime Interface Emulator,
with `awslambdaric` as its runtime client and the handler, memory, timeout and environment of the
template, against moto's standalone server and the Cases emulator. Modules, in the order things happen:
`toolchain` (the emulator binary, the runtime's Python and packages, the layer for this host),
`template` (synthesis and one function's definition), `rie` (one function in its emulator), `session`
(the local AWS, invocations and their side effects). The README's "Local invoke" is the manual.
"""

from casewatch_dev.lambda_runtime.session import RuntimeSession, invoke_in_runtime, render_runtime

__all__ = ["RuntimeSession", "invoke_in_runtime", "render_runtime"]
