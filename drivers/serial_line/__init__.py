"""Plain serial-line devices: text lines printed on their own or in answer to an ASCII command.

``config`` (models), ``parser`` (pure: bytes to lines to readings), ``port`` (one scheduler per
serial port, over pyserial), ``device`` (the ``Driver``), ``plugin`` (registers ``serial_line``).
The guide is ``docs/serial-line.md``.
"""
