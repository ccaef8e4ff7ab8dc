from ganrf.cli import main

raise SystemExit(main())
