<#
.SYNOPSIS
  Downloads and builds the External Python for CEM (drop-in for the old get-py.ps1).

.DESCRIPTION
  Same contract as the get-py.ps1 of the "Python for CEM" install folder: with no argument
  the distribution is generated in contents\Python\external beside this script; an argument
  names another destination. It prints "Generating python at location: <path>".

  The work is done by extpy (extpy.exe beside this script, else on PATH): every download is
  checked against a pinned sha256, and the folder is replaced only when the new one is
  complete. Certificate problems are explained with the fix (see `extpy doctor`).
  Extra arguments are passed to `extpy build` (for example --ca-cert C:\certs\proxy-root.pem).
#>
param(
    [Parameter(Position = 0)]
    [string]$Destination
)
$ErrorActionPreference = 'Stop'

if (-not $Destination) {
    $Destination = Join-Path $PSScriptRoot 'contents\Python\external'
}

$extpy = Join-Path $PSScriptRoot 'extpy.exe'
if (-not (Test-Path -LiteralPath $extpy)) {
    $found = Get-Command extpy -ErrorAction SilentlyContinue
    if (-not $found) {
        Write-Error "extpy.exe was not found beside this script or on PATH"
        exit 2
    }
    $extpy = $found.Source
}

& $extpy build $Destination @args
exit $LASTEXITCODE
