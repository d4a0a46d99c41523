<#
.SYNOPSIS
  Downloads and builds the External Python for CEM (drop-in for the old get-py.ps1).

.DESCRIPTION
  Same contract as the get-py.ps1 of the "Python for CEM" install folder: with no argument
  the distribution is generated in contents\Python\external beside this script; a first
  argument that does not start with "-" names another destination. It prints
  "Generating python at location: <path>".

  The work is done by extpy (extpy.exe beside this script, else on PATH): every download is
  checked against a pinned sha256, and the folder is replaced only when the new one is
  complete. Certificate problems are explained with the fix (see `extpy doctor`).

  Every other argument is passed to `extpy build` unchanged (for example
  --ca-cert C:\certs\proxy-root.pem). The exit code is extpy's: 0 success, 1 local failure,
  2 usage or input error (also: extpy.exe not found), 3 verification failed, 4 network or TLS.

  A script downloaded with a browser is blocked by the execution policy until unblocked:
  Unblock-File .\get-py.ps1

.EXAMPLE
  .\get-py.ps1
  Builds into contents\Python\external beside this script.

.EXAMPLE
  .\get-py.ps1 D:\SCP\ExternalPython1\Python\External --ca-cert C:\certs\proxy-root.pem
  Builds into the given folder, trusting the given root certificate for the downloads.

.EXAMPLE
  .\get-py.ps1 --offline --bundle D:\extpy-bundle.zip
  Builds into the default folder from an offline bundle.
#>

# No param() block on purpose: any [Parameter()] or [CmdletBinding()] makes this an advanced
# script, which refuses arguments it does not declare (--ca-cert ...) and leaves $args empty.
# The destination is read from $args here instead.

# Not 'Stop': in Windows PowerShell 5.1 a native program's stderr line becomes a terminating
# error under 'Stop' when output is redirected (2>&1, Invoke-Command, WinRM), and extpy
# writes its progress and messages to stderr.
$ErrorActionPreference = 'Continue'

$rest = @($args)
$Destination = $null
if ($rest.Count -ge 2 -and $rest[0] -eq '-Destination') {
    # The old script's named form: -Destination <path>.
    $Destination = [string]$rest[1]
    $rest = @($rest | Select-Object -Skip 2)
} elseif ($rest.Count -ge 1 -and -not ([string]$rest[0]).StartsWith('-')) {
    $Destination = [string]$rest[0]
    $rest = @($rest | Select-Object -Skip 1)
}
if (-not $Destination) {
    $Destination = Join-Path $PSScriptRoot 'contents\Python\external'
}
# "D:\dest\" would reach extpy as D:\dest" (the trailing backslash escapes the closing quote
# Windows PowerShell adds); a drive root such as C:\ keeps its backslash.
if ($Destination.Length -gt 3) {
    $Destination = $Destination.TrimEnd('\')
}

$extpy = Join-Path $PSScriptRoot 'extpy.exe'
if (-not (Test-Path -LiteralPath $extpy)) {
    $found = Get-Command extpy -ErrorAction SilentlyContinue
    if (-not $found) {
        [Console]::Error.WriteLine('error: extpy.exe was not found beside this script or on PATH')
        [Console]::Error.WriteLine('  help: put extpy.exe in ' + $PSScriptRoot + ' (or on PATH), then run again')
        exit 2
    }
    $extpy = $found.Source
}

# Windows PowerShell 5.1 (and PowerShell before 7.3) quotes an argument only when it holds
# a space and passes quotes inside it raw, so extpy would see them differently. Escaping the
# way the C runtime parses a command line makes every argument arrive unchanged.
function ConvertTo-NativeArgument([string]$Value) {
    $v = $PSVersionTable.PSVersion
    $legacy = $v.Major -lt 7 -or ($v.Major -eq 7 -and $v.Minor -lt 3) -or
        (Get-Variable PSNativeCommandArgumentPassing -ValueOnly -ErrorAction SilentlyContinue) -eq 'Legacy'
    if (-not $legacy) { return $Value }
    if ($Value -eq '') { return '""' }
    # Backslashes before a quote are doubled and the quote escaped: \" and \\\"
    $escaped = [regex]::Replace($Value, '(\\*)"', { param($m) $m.Groups[1].Value * 2 + '\"' })
    if ($escaped -match '\s') {
        # The closing quote PowerShell adds must not be escaped by trailing backslashes.
        $escaped = [regex]::Replace($escaped, '(\\+)$', { param($m) $m.Groups[1].Value * 2 })
    }
    return $escaped
}

$native = @(ConvertTo-NativeArgument $Destination) + @($rest | ForEach-Object { ConvertTo-NativeArgument ([string]$_) })
& $extpy build @native
exit $LASTEXITCODE
